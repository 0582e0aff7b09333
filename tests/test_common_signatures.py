"""Common signatures: detection, validators, `tfhub inspect` and the server's model page."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import requests
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO
from tests.helpers import models as test_models
from tests.helpers import tf1_modules as mods
from tests.helpers.hub import DOCS, InProcessHub, publish
from tfhub import cli
from tfhub.exporters.keras_model import export_keras
from tfhub.server import pages
from tfhub.signatures import common
from tfhub.signatures.common import (
    BERT_INPUT_NAMES,
    CommonSignatureError,
    find_common_signatures,
    validate_bert_encoder,
    validate_bert_preprocessor,
    validate_common_signature,
    validate_image_classification,
    validate_image_feature_vector,
    validate_text_embedding,
)
from tfhub.tools import inspect as inspect_tool

v1 = tf.compat.v1


# -- small real models ---------------------------------------------------------------------------


def _conv_net(channels: int = 3) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, channels)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


def _bert_encoder(seq_length: int = 8, width: int = 6) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = {n: keras.Input((seq_length,), dtype="int32", name=n) for n in BERT_INPUT_NAMES}
    words = keras.layers.Embedding(64, width)(inputs["input_word_ids"])
    types = keras.layers.Embedding(2, width)(inputs["input_type_ids"])
    sequence = keras.layers.Dense(width, name="transform")(words + types)
    mask = keras.ops.expand_dims(keras.ops.cast(inputs["input_mask"], "float32"), -1)
    mean = keras.ops.sum(sequence * mask, axis=1) / keras.ops.maximum(
        keras.ops.sum(mask, axis=1), 1.0
    )
    pooled = keras.layers.Dense(width, activation="tanh", name="pooler")(mean)
    return keras.Model(
        inputs, {"pooled_output": pooled, "sequence_output": sequence, "default": pooled}
    )


class BertPreprocessor(tf.Module):
    """Sentences → hashed word ids, padded to seq_length, with mask and type ids."""

    def __init__(self, seq_length: int = 8):
        super().__init__()
        self.seq_length = seq_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        tokens = tf.strings.split(sentences)
        ids = tf.strings.to_hash_bucket_fast(tokens, 63) + 1
        ids = tf.cast(ids.to_tensor(shape=[None, self.seq_length]), tf.int32)
        return {
            "input_word_ids": ids,
            "input_mask": tf.cast(ids > 0, tf.int32),
            "input_type_ids": tf.zeros_like(ids),
        }


class SentenceScore(tf.Module):
    """Looks like a text embedding but returns one float per sentence (rank 1)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        return tf.cast(tf.strings.length(sentences), tf.float32)


def _classifier_module_fn():
    images = v1.placeholder(tf.float32, [None, 4, 4, 3], name="images")
    w = v1.get_variable("w", [3, 5], initializer=v1.ones_initializer())
    logits = tf.matmul(tf.reduce_mean(images, axis=[1, 2]), w)
    hub.add_signature(inputs={"images": images}, outputs=logits)
    hub.add_signature(
        "image_classification", inputs={"images": images}, outputs={"default": logits}
    )


def _misnamed_image_module_fn():
    x = v1.placeholder(tf.float32, [None, 4, 4, 3])
    hub.add_signature(inputs=x, outputs=tf.reduce_mean(x, axis=[1, 2]))


def _named_only_module_fn():
    sentences = v1.placeholder(tf.string, [None])
    hub.add_signature("lengths", inputs=sentences, outputs=tf.strings.length(sentences))


def _export_tf1(spec, path):
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(str(path), session)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Paths of the models every test here reads."""
    root = tmp_path_factory.mktemp("common")
    export_keras(_conv_net(), root / "image")
    export_keras(_conv_net(channels=1), root / "gray")
    export_keras(_bert_encoder(), root / "encoder")
    tf.saved_model.save(BertPreprocessor(), str(root / "preprocessor"))
    tf.saved_model.save(SentenceScore(), str(root / "score"))
    return {
        "image": root / "image",
        "gray": root / "gray",
        "encoder": root / "encoder",
        "preprocessor": root / "preprocessor",
        "score": root / "score",
        "text": test_models.save_text_embedding(root / "text"),
        "mul": test_models.save_mul(root / "mul"),
        "tf1_image": _export_tf1(hub.create_module_spec(mods.image_module_fn), root / "tf1img"),
    }


# -- detection and validation --------------------------------------------------------------------


def test_image_feature_vector_from_a_keras_conv_net(saved):
    found = find_common_signatures(saved["image"])
    assert found.implements == ["image-feature-vector"]
    assert {m.where for m in found.matches} == {"__call__", "signature 'serving_default'"}
    assert found.matches[0].details == {"height": 8, "width": 8, "num_features": 4}
    assert "image-classification has the same interface" in found.matches[0].note
    # The docs' module-type tells a classifier from a feature vector.
    hinted = find_common_signatures(saved["image"], module_type=["image-classification"])
    assert hinted.implements == ["image-classification"]
    match = validate_image_feature_vector(saved["image"], image_size=(8, 8), num_features=4)
    assert match.where == "__call__" and match.details["num_features"] == 4
    assert validate_image_classification(hub.load(str(saved["image"]))).details["num_classes"] == 4
    with pytest.raises(CommonSignatureError, match=r"num_features is 4, expected 5") as err:
        validate_image_feature_vector(saved["image"], num_features=5)
    assert err.value.signature == "image-feature-vector" and len(err.value.problems) == 2
    # It really is one: any batch of [0, 1] images in, [batch, 4] features out.
    images = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    assert hub.KerasLayer(str(saved["image"]))(images).shape == (2, 4)


def test_text_embedding(saved):
    assert find_common_signatures(saved["text"]).implements == ["text-embedding"]
    assert validate_text_embedding(saved["text"], dim=8).details == {"dim": 8}
    with pytest.raises(CommonSignatureError) as err:
        validate_text_embedding(saved["text"], dim=16)
    message = str(err.value)
    assert "does not implement the text-embedding common signature" in message
    assert "string [batch] → float32 [batch, dim]" in message
    assert "__call__: output 'output_0''s dim is 8, expected 16" in message
    assert "signature 'serving_default': output 'default''s dim is 8, expected 16" in message
    with pytest.raises(CommonSignatureError, match=r"input is string \[None\], expected float32"):
        validate_image_feature_vector(saved["text"])


def test_bert_encoder_and_preprocessor(saved):
    assert find_common_signatures(saved["encoder"]).implements == ["bert-encoder"]
    assert find_common_signatures(saved["preprocessor"]).implements == ["bert-preprocessor"]
    assert validate_bert_encoder(saved["encoder"], width=6, seq_length=8).details == {
        "seq_length": 8,
        "width": 6,
    }
    assert validate_bert_preprocessor(saved["preprocessor"], seq_length=8).where == "__call__"
    with pytest.raises(CommonSignatureError, match="pooled_output's width is 6, expected 768"):
        validate_bert_encoder(saved["encoder"], width=768)
    with pytest.raises(CommonSignatureError, match="has no input"):
        validate_bert_encoder(saved["preprocessor"])
    # They fit together as the common signatures promise.
    preprocess, encode = hub.load(str(saved["preprocessor"])), hub.load(str(saved["encoder"]))
    outputs = encode(preprocess(tf.constant(["hello world", "a b c"])), training=False)
    assert outputs["pooled_output"].shape == (2, 6)
    assert outputs["sequence_output"].shape == (2, 8, 6)
    np.testing.assert_array_equal(outputs["default"], outputs["pooled_output"])


def test_tf1_image_modules():
    spec = hub.create_module_spec(mods.image_module_fn)
    found = find_common_signatures(spec)
    assert found.implements == ["image-feature-vector"]
    assert found.matches[0].where == "signature 'default' (tags [])"
    assert found.matches[0].details == {"height": 5, "width": 6, "num_features": 3}
    # The signature name `image_classification` tells what the module is.
    classifier = find_common_signatures(hub.create_module_spec(_classifier_module_fn))
    assert classifier.implements == ["image-classification"]
    assert validate_image_classification(
        hub.create_module_spec(_classifier_module_fn), num_classes=5
    ).details == {"height": 4, "width": 4, "num_classes": 5}
    # An image input that is not called "images" is a near miss, with the reason.
    misnamed = find_common_signatures(hub.create_module_spec(_misnamed_image_module_fn))
    assert misnamed.implements == []
    [miss] = misnamed.near_misses
    assert miss.name == "image-feature-vector"
    assert "has no input 'images' (inputs: ['default'])" in miss.problems[0]
    with pytest.raises(CommonSignatureError, match="signature 'default' \\(tags \\[\\]\\): has no"):
        validate_image_feature_vector(hub.create_module_spec(_misnamed_image_module_fn))


def test_loaded_objects_and_modules(saved):
    assert find_common_signatures(hub.load(str(saved["tf1_image"]))).implements == [
        "image-feature-vector"
    ]
    with tf.Graph().as_default():
        module = hub.Module(str(saved["tf1_image"]))
        assert find_common_signatures(module).implements == ["image-feature-vector"]
    assert find_common_signatures(hub.load(str(saved["text"]))).implements == ["text-embedding"]


def test_near_misses_say_why(saved):
    gray = find_common_signatures(saved["gray"])
    assert gray.implements == []
    assert {m.name for m in gray.near_misses} == {"image-feature-vector"}
    assert "expected 3 (RGB) channels" in gray.near_misses[0].problems[0]
    score = find_common_signatures(saved["score"])
    assert score.implements == []
    # tf.saved_model.save made a serving_default from __call__: both say why.
    assert [(m.name, m.where, m.problems) for m in score.near_misses] == [
        (
            "text-embedding",
            "__call__",
            ("output 'output_0' is float32 [None], expected float32 [batch, dim]",),
        ),
        (
            "text-embedding",
            "signature 'serving_default'",
            ("output 'output_0' is float32 [None], expected float32 [batch, dim]",),
        ),
    ]
    assert find_common_signatures(saved["mul"]).to_json() == {
        "implements": [],
        "matches": [],
        "near_misses": [],
    }


def test_validators_name_the_input_and_the_expectation(saved):
    with pytest.raises(CommonSignatureError) as err:
        validate_common_signature(saved["mul"], "text-embedding")
    message = str(err.value)
    assert "__call__: the input is float32 [unknown rank], expected string [batch]" in message
    assert err.value.handle == str(saved["mul"])
    bad_mask = {
        "format": "saved_model_2",
        "variants": [{"tags": ["serve"], "signatures": {}}],
        "call": [
            {
                "inputs": {
                    n: {"dtype": "float32" if n == "input_mask" else "int32", "shape": [None, 8]}
                    for n in BERT_INPUT_NAMES
                },
                "input_structure": "dict",
                "outputs": {"pooled_output": {"dtype": "float32", "shape": [None, 4]}},
                "output_structure": "dict",
                "training": [False, True],
            }
        ],
    }
    with pytest.raises(CommonSignatureError) as err:
        validate_bert_encoder(bad_mask)
    problems = "\n".join(err.value.problems)
    assert "input 'input_mask' is float32 [None, 8], expected int32 [batch, seq_length]" in problems
    assert "has no output 'sequence_output'" in problems
    assert find_common_signatures(bad_mask).near_misses[0].name == "bert-encoder"
    with pytest.raises(hub.UsageError, match="Unknown common signature 'nope'"):
        validate_common_signature(saved["mul"], "nope")
    with pytest.raises(hub.UsageError, match="needs 'format' and 'variants'"):
        find_common_signatures({"signatures": {}})
    with pytest.raises(hub.UsageError, match="got int"):
        find_common_signatures(3)
    with pytest.raises(CommonSignatureError, match=r"none of the signatures \['default'\]"):
        validate_text_embedding(hub.create_module_spec(_named_only_module_fn))


def test_reading_a_description_does_not_import_tensorflow(saved):
    description = inspect_tool.inspect_model(saved["text"])
    code = (
        "import json, sys\nfrom tfhub.signatures.common import find_common_signatures\n"
        "print(find_common_signatures(json.load(sys.stdin)).implements, "
        "'tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(description),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert out.strip() == "['text-embedding'] False"


# -- tfhub inspect and the server ---------------------------------------------------------------


def test_inspect_reports_common_signatures(saved, capsys):
    assert inspect_tool.main([str(saved["encoder"]), "--text"]) == 0
    text = capsys.readouterr().out
    assert "implements common signatures: bert-encoder" in text
    assert "  bert-encoder via __call__, signature 'serving_default'" in text
    assert "__call__ (training=False, True)" in text
    assert "input  input_word_ids: int32 [None, 8] dense" in text
    assert inspect_tool.main([str(saved["gray"]), "--text"]) == 0
    text = capsys.readouterr().out
    assert "implements common signatures: none" in text
    assert "almost image-feature-vector via __call__: the input is float32 [None, 8, 8, 1]" in text
    assert inspect_tool.main([str(saved["text"])]) == 0  # JSON, as the server's validator runs it
    info = json.loads(capsys.readouterr().out)
    assert info["common_signatures"]["implements"] == ["text-embedding"]
    assert info["call"][0]["training"] == [False, True]
    assert cli.main(["inspect", str(saved["tf1_image"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["common_signatures"]["implements"] == ["image-feature-vector"]


def test_model_page_shows_what_the_model_implements(saved):
    record = {
        "publisher": "test",
        "model": "enc",
        "version": 1,
        "format": "saved_model_2",
        "info": inspect_tool.inspect_model(saved["encoder"]),
        "archive": {"size": 1, "sha256": "0" * 64},
        "docs": {"metadata": {"module-type": ["text-embedding"]}},
    }
    html = pages.model_page(record, [1], "http://hub/test/enc/1")
    assert "<td class='fact-implements'>bert encoder</td>" in html
    assert "the docs say text-embedding, but the model does not implement" in html
    record["info"] = {"variants": []}  # an old or foreign record: no line, no crash
    assert "fact-implements" not in pages.model_page(record, [1], "http://hub/test/enc/1")


def test_published_model_page_says_implements(saved, tmp_path):
    from tfhub.testing import make_tarball

    server = InProcessHub(tmp_path / "store")
    try:
        assert publish(server.url, "test/text/1", make_tarball(saved["text"])).status_code == 201
        html = requests.get(f"{server.url}/test/text/1", timeout=30).text
        assert "<th>Implements</th><td class='fact-implements'>text embedding</td>" in html
        resp = publish(server.url, "test/mul/1", make_tarball(saved["mul"]), docs=DOCS)
        assert resp.json()["info"]["common_signatures"]["implements"] == []
        html = requests.get(f"{server.url}/test/mul/1", timeout=30).text
        assert "fact-implements" not in html
        assert "the docs say text-embedding, but the model does not implement" in html
    finally:
        server.stop()


def test_descriptions_round_trip_through_json(saved):
    found = find_common_signatures(saved["image"])
    assert common.CommonSignatures.from_json(json.loads(json.dumps(found.to_json()))) == found
