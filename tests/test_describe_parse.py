"""The parsed description equals what loading the model shows, on every kind of model we make.

`inspect_model` reads the protobufs and the checkpoint index; the reference here loads the
model (tf.saved_model.load, or hub.Module in a graph for the TF1 Hub format) and describes the
live object, as `tfhub inspect` did before. Signatures, dtypes, shapes (dense, sparse,
ragged), __call__ traces with their `training` values, attachments and variables must agree.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import tf1_modules as mods
from tfhub.describe import describe_model_dir, describe_saved_model_object
from tfhub.describe.objects import spec_of
from tfhub.errors import NotAModelError
from tfhub.exporters.keras_model import export_keras
from tfhub.exporters.text_embedding import export_text_embedding
from tfhub.tools.inspect import inspect_model

v1 = tf.compat.v1


def _export_tf1(module_fn: Any, path: Path, **kwargs: Any) -> Path:
    spec = hub.create_module_spec(module_fn, **kwargs)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            module.export(str(path), session)
    return path


def _keras_piece() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(5, kernel_regularizer=keras.regularizers.L2(0.01))(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="features")(x))


def _tf1_saved_model(path: Path) -> Path:
    """A plain TF1 SavedModel (one `serve` graph, a sparse input), as TF1 serving wrote them."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        ids = v1.sparse_placeholder(tf.int64, [None, 4], name="ids")
        w = v1.get_variable("w", initializer=tf.ones([3, 2]))
        info = v1.saved_model.utils.build_tensor_info
        signature = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"x": info(x), "ids": info(ids)},
            outputs={"y": info(tf.matmul(x, w)), "n": info(tf.sparse.reduce_sum(ids, axis=1))},
        )
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                session, tags=["serve"], signature_def_map={"serving_default": signature}
            )
            builder.save()
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, models):
    """The session's models (conftest's ``models``, read only here) and more built here."""
    root = tmp_path_factory.mktemp("parse")
    vectors = root / "vectors.txt"
    vectors.write_text("the 0.1 0.2 0.3\ncat 0.4 0.5 0.6\nsat -0.1 0.0 0.7\n")
    vocab = root / "vocab.txt"
    vocab.write_text("a\nb\nc\nd\n")
    keras_model = _keras_piece()
    keras_model.export(str(root / "keras_export"))
    tf2 = {
        "mul": models["mul"],
        "flag": models["flag"],
        "text": models["text"],
        "dict": models["dict"],
        "export_keras": Path(export_keras(keras_model, root / "export_keras")),
        "keras_export": root / "keras_export",
        "text_tf2": Path(export_text_embedding(vectors, root / "text_tf2", num_oov_buckets=2)),
        "tf1_saved_model": _tf1_saved_model(root / "tf1_saved_model"),
    }
    tf1 = {
        "tf1": models["tf1"],
        "seed": _export_tf1(mods.seed_module_fn, root / "seed"),
        "fruit": _export_tf1(mods.fruit_module_fn, root / "fruit"),
        "train": _export_tf1(
            mods.train_variant_module_fn,
            root / "train",
            tags_and_args=mods.TRAIN_TAGS_AND_ARGS,
        ),
        "vocab": _export_tf1(mods.make_vocab_module_fn(vocab), root / "vocab"),
        "sparse_ragged": _export_tf1(mods.sparse_and_ragged_module_fn, root / "sparse_ragged"),
        "image": _export_tf1(mods.image_module_fn, root / "image"),
        "text_tf1": Path(export_text_embedding(vectors, root / "text_tf1", format="tf1")),
    }
    return tf2, tf1


def _loaded_tf2(path: Path) -> dict[str, Any]:
    """What `tfhub inspect` reported before: the description of the loaded object."""
    obj = tf.saved_model.load(str(path))
    return describe_saved_model_object(obj)


def _loaded_tf1_module(path: Path) -> dict[str, Any]:
    """What `tfhub inspect` reported before for a TF1 Hub module: hub.Module per variant."""
    spec = hub.load_module_spec(str(path))
    variants = []
    variables: dict[str, Any] = {}
    for tags in spec.get_tags():
        with tf.Graph().as_default():
            module = hub.Module(spec, tags=tags, trainable=True)
            signatures = {
                name: {
                    "inputs": {
                        k: spec_of(i).to_json() for k, i in module.get_input_info_dict(name).items()
                    },
                    "outputs": {
                        k: spec_of(i).to_json()
                        for k, i in module.get_output_info_dict(name).items()
                    },
                }
                for name in module.get_signature_names()
            }
            variants.append(
                {
                    "tags": sorted(tags),
                    "signatures": signatures,
                    "attachments": spec.attachment_keys(tags),
                    "trainable_variables": len(v1.trainable_variables()),
                }
            )
            if module.variables:
                variables = {
                    "count": len(module.variables),
                    "bytes": sum(
                        math.prod(v.shape.as_list()) * v.dtype.size for v in module.variables
                    ),
                }
    return {"format": "hub", "variants": variants, "variables": variables}


def _forget_sparse_dims(value: Any) -> Any:
    """A sparse spec as the loaded graph shows it: the rank, no static dims.

    The parser reports the shape the signature declares (as tensorflow_hub did); a SparseTensor
    rebuilt from its component tensors in an imported graph only knows its rank.
    """
    if isinstance(value, dict):
        if value.get("kind") == "sparse" and value.get("shape") is not None:
            return {**value, "shape": [None] * len(value["shape"])}
        return {k: _forget_sparse_dims(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_forget_sparse_dims(v) for v in value]
    return value


def _same(parsed: dict[str, Any], loaded: dict[str, Any], name: str) -> None:
    for key, expected in loaded.items():
        got = parsed[key]
        if key == "variables" and got:
            got = {"count": got["count"], "bytes": got["bytes"]}
        assert _forget_sparse_dims(got) == expected, (name, key)


def test_tf2_models_parse_as_they_load(built):
    tf2, _ = built
    for name, path in tf2.items():
        parsed = describe_model_dir(path)
        loaded = _loaded_tf2(path)
        if name == "tf1_saved_model":
            # Loading splits the sparse input into its components; the parser keeps it whole
            # (checked exactly in the next test).
            inputs = loaded["variants"][0]["signatures"]["serving_default"]["inputs"]
            parts = {k: inputs.pop(k) for k in ("ids_indices", "ids_values", "ids_dense_shape")}
            assert parts["ids_values"] == {"dtype": "int64", "shape": [None], "kind": "dense"}
            inputs["ids"] = {"dtype": "int64", "shape": [None, None], "kind": "sparse"}
        _same(parsed, loaded, name)
    # Spot checks of what both report.
    flag = describe_model_dir(tf2["flag"])
    assert [t["training"] for t in flag["call"]] == [[False, True]]
    assert flag["variables"]["list"] == [
        {"name": "w", "dtype": "float32", "shape": [2, 1], "trainable": True},
        {"name": "frozen", "dtype": "float32", "shape": [], "trainable": False},
    ]
    assert flag["format"] == "saved_model_2" and flag["trainable_variables"] == 1
    keras_piece = describe_model_dir(tf2["export_keras"])
    assert keras_piece["regularization_losses"] >= 1 and keras_piece["fine_tunable"]
    assert describe_model_dir(tf2["text_tf2"])["assets"] != []


def test_tf1_saved_model_variants_and_sparse_inputs(built):
    tf2, _ = built
    info = inspect_model(tf2["tf1_saved_model"])
    assert info["format"] == "saved_model" and info["call"] == []
    [variant] = info["variants"]
    assert variant["tags"] == ["serve"]
    assert variant["signatures"]["serving_default"]["inputs"] == {
        "ids": {"dtype": "int64", "shape": [None, 4], "kind": "sparse"},
        "x": {"dtype": "float32", "shape": [None, 3], "kind": "dense"},
    }
    assert info["variables"]["count"] == 1 and info["variables"]["bytes"] == 24


def test_tf1_hub_modules_parse_as_they_load(built):
    _, tf1 = built
    for name, path in tf1.items():
        _same(describe_model_dir(path), _loaded_tf1_module(path), name)
    ragged = describe_model_dir(tf1["sparse_ragged"])["variants"][0]["signatures"]
    assert ragged["ragged"]["inputs"]["default"]["kind"] == "ragged"
    assert ragged["sparse"]["inputs"]["default"] == {
        "dtype": "float32",
        "shape": [None, 3],
        "kind": "sparse",
    }
    image = describe_model_dir(tf1["image"])
    assert image["variants"][0]["attachments"] == ["image_module_info"]
    train = describe_model_dir(tf1["train"])
    assert [v["tags"] for v in train["variants"]] == [[], ["train"]]
    assert train["variables"]["list"] == [
        {"name": "moving_mean", "dtype": "float32", "shape": [4], "trainable": False},
        {"name": "w", "dtype": "float32", "shape": [4, 4], "trainable": True},
    ]
    assert describe_model_dir(tf1["vocab"])["assets"] == ["vocab.txt"]


def test_minilm_pieces_parse_as_they_load(minilm):
    assert minilm["code"] == 0, minilm["stderr"]
    out = minilm["dir"]
    for piece in ("preprocessor", "encoder", "sentence_embedding"):
        _same(describe_model_dir(out / piece), _loaded_tf2(out / piece), piece)
    info = inspect_model(out / "sentence_embedding")
    assert info["common_signatures"]["implements"] == ["text-embedding"]
    assert info["variables"]["bytes"] == sum(
        np.prod(v["shape"]) * 4 for v in info["variables"]["list"] if v["dtype"] == "float32"
    )


def test_a_text_saved_model_pbtxt_is_parsed_too(built, tmp_path):
    from google.protobuf import descriptor_pool, message_factory, text_format

    tf2, _ = built
    model = Path(shutil.copytree(tf2["text"], tmp_path / "text"))
    saved_model = message_factory.GetMessageClass(
        descriptor_pool.Default().FindMessageTypeByName("tensorflow.SavedModel")
    )
    pb = model / "saved_model.pb"
    (model / "saved_model.pbtxt").write_text(
        text_format.MessageToString(saved_model.FromString(pb.read_bytes()))
    )
    pb.unlink()
    expected = describe_model_dir(tf2["text"])
    parsed = describe_model_dir(model)
    assert parsed["size_bytes"] != expected["size_bytes"]
    assert {**parsed, "size_bytes": 0} == {**expected, "size_bytes": 0}
    info = inspect_model(model)
    assert info["unsafe_ops"][0].startswith("not scanned:")
    assert info["common_signatures"]["implements"] == ["text-embedding"]
    (model / "saved_model.pbtxt").write_text("meta_graphs { not_a_field: 1 }")
    with pytest.raises(NotAModelError, match=r"saved_model.pbtxt is not a valid model file"):
        inspect_model(model)
