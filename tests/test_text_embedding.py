"""The text-embedding exporter: word2vec/GloVe files → TF2 and TF1 sentence-embedding modules.

Expected values are computed by hand (numpy) from small files written in ``tmp_path``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import run_python
from tfhub import cli
from tfhub.errors import UsageError
from tfhub.exporters.text_embedding import export_text_embedding

v1 = tf.compat.v1

# The classic exporter's example vocabulary.
VECTORS = {
    "cat": [1.11, 2.56, 3.45],
    "dog": [1.0, 2.0, 3.0],
    "mouse": [0.5, 0.1, 0.6],
}
CAT, DOG, MOUSE = (np.array(VECTORS[w], np.float32) for w in ("cat", "dog", "mouse"))
ZERO = np.zeros(3, np.float32)
SENTENCES = ["cat cat", "lizard. dog", "", "Mouse, dog!  cat", "don't"]


def _text(rows: dict[str, list[float]], header: bool = False) -> str:
    lines = [f"{token} {' '.join(repr(v) for v in vec)}" for token, vec in rows.items()]
    if header:
        lines.insert(0, f"{len(rows)} {len(next(iter(rows.values())))}")
    return "\n".join(lines) + "\n"


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf8")
    path.write_bytes(content)
    return path


def _binary(rows: dict[str, list[float]], *, newline: bool = True) -> bytes:
    dim = len(next(iter(rows.values())))
    parts = [f"{len(rows)} {dim}\n".encode()]
    for token, vec in rows.items():
        parts.append(token.encode("utf8") + b" " + np.asarray(vec, "<f4").tobytes())
        if newline:
            parts.append(b"\n")
    return b"".join(parts)


def _sqrtn(*vectors: np.ndarray) -> np.ndarray:
    if not vectors:
        return ZERO
    return np.sum(vectors, axis=0) / np.sqrt(len(vectors))


def _close(actual: object, expected: object) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example file exported once in each format (defaults: 1 OOV bucket, sentences)."""
    root = tmp_path_factory.mktemp("text_embedding")
    source = _write(root / "vectors.txt", _text(VECTORS))
    return {
        "source": source,
        "tf2": Path(export_text_embedding(source, root / "tf2")),
        "tf1": Path(export_text_embedding(source, root / "tf1", format="tf1")),
    }


# --------------------------------------------------------------------------------------------
# Reading the common formats


def test_text_without_header_gives_the_classic_example_values(exported):
    obj = hub.load(str(exported["tf2"]))
    out = obj(tf.constant(SENTENCES)).numpy()
    assert out.dtype == np.float32 and out.shape == (5, 3)
    _close(out[0], 2 * CAT / np.sqrt(2))  # [1.57, 3.62, 4.88]
    _close(out[1], (ZERO + DOG) / np.sqrt(2))  # "lizard" is OOV: a zero row, still counted
    _close(out[2], ZERO)
    # Case is kept: "Mouse" is OOV; punctuation and double spaces separate tokens.
    _close(out[3], _sqrtn(ZERO, DOG, CAT))
    _close(out[4], _sqrtn(ZERO, ZERO))  # "don" and "t"
    assert (exported["tf2"] / "assets" / "tokens.txt").read_bytes() == b"cat\ndog\nmouse\n"
    (embeddings,) = obj.variables
    assert embeddings.dtype == tf.float32 and embeddings.shape == (4, 3)
    _close(embeddings.numpy(), np.stack([CAT, DOG, MOUSE, ZERO]))
    assert [v.name for v in obj.trainable_variables] == [embeddings.name]
    assert list(obj.regularization_losses) == []


def test_loading_needs_no_unsafe_op_warning_and_list_input_works(exported, caplog):
    with caplog.at_level(logging.WARNING, logger="tfhub"):
        obj = hub.load(str(exported["tf2"]))
    assert not [r for r in caplog.records if r.name.startswith("tfhub")]
    _close(obj(["cat"]).numpy(), [CAT])
    serving = obj.signatures["serving_default"]
    _close(serving(sentences=tf.constant(["cat dog"]))["default"], [_sqrtn(CAT, DOG)])


def test_word2vec_text_header_is_detected_and_not_a_token(tmp_path, exported):
    source = _write(tmp_path / "w2v.txt", _text(VECTORS, header=True))
    out = Path(export_text_embedding(source, tmp_path / "m"))
    assert (out / "assets" / "tokens.txt").read_bytes() == b"cat\ndog\nmouse\n"
    obj, reference = hub.load(str(out)), hub.load(str(exported["tf2"]))
    _close(obj.variables[0].numpy(), reference.variables[0].numpy())
    _close(obj(tf.constant(SENTENCES)), reference(tf.constant(SENTENCES)))


def test_glove_like_file_with_exponents_blank_lines_and_punctuation_tokens(tmp_path):
    content = (
        "the 0.418 2.4968e-01 -0.41242 0.1217\n"
        "\n"
        ", 0.013441 0.23682 -1.6899E-01 0.40951\r\n"
        "café -1 +2 3. .5\n"
        "\n"
    )
    source = _write(tmp_path / "glove.6B.4d.txt", content)
    out = export_text_embedding(source, tmp_path / "m", preprocessing=False)
    obj = hub.load(out)
    expected = np.array(
        [
            [0.418, 0.24968, -0.41242, 0.1217],
            [0.013441, 0.23682, -0.16899, 0.40951],
            [-1, 2, 3, 0.5],
            [0, 0, 0, 0],
        ],
        np.float32,
    )
    _close(obj.variables[0].numpy(), expected)
    # Token input, one row per token: "," is a real token here, "" gives zeros, UTF-8 matches.
    tokens = tf.constant([",", "café", "", "the", "zebra"])
    _close(obj(tokens), expected[[1, 2, 3, 0, 3]])


def test_word2vec_binary_by_suffix_and_by_flag(tmp_path, exported):
    reference = hub.load(str(exported["tf2"]))
    bin_file = _write(tmp_path / "vectors.bin", _binary(VECTORS))
    flagged = _write(tmp_path / "vectors.w2v", _binary(VECTORS, newline=False))
    for name, source, binary in (("a", bin_file, False), ("b", flagged, True)):
        obj = hub.load(export_text_embedding(source, tmp_path / name, binary=binary))
        np.testing.assert_array_equal(
            obj.variables[0].numpy(), reference.variables[0].numpy()
        )  # float32 in, the very same bits out
        _close(obj(tf.constant(SENTENCES)), reference(tf.constant(SENTENCES)))


def test_binary_tokens_are_bytes_and_utf8_sentences_match(tmp_path):
    rows = {"café": [1.0, 0.0], "naïve": [0.0, 2.0]}
    out = export_text_embedding(_write(tmp_path / "u.bin", _binary(rows)), tmp_path / "m")
    obj = hub.load(out)
    _close(obj(tf.constant(["café naïve"])), [[1 / np.sqrt(2), 2 / np.sqrt(2)]])


# --------------------------------------------------------------------------------------------
# Preprocessing, OOV buckets, the combiner


def test_punctuation_and_whitespace_runs_separate_tokens(exported):
    obj = hub.load(str(exported["tf2"]))
    cases = {
        "  cat,dog!!\tmouse\u00a0cat  ": _sqrtn(CAT, DOG, MOUSE, CAT),  # NBSP is a separator
        "$cat+dog|mouse~": _sqrtn(CAT, DOG, MOUSE),  # ASCII symbols count as punctuation
        "«cat»—dog…": _sqrtn(CAT, DOG),  # Unicode punctuation too
        "cat\u3000\n\n dog": _sqrtn(CAT, DOG),
        " ... !!! ": ZERO,  # no token at all: zeros, not NaN
    }
    out = obj(tf.constant(list(cases))).numpy()
    assert not np.isnan(out).any()
    for row, expected in zip(out, cases.values(), strict=True):
        _close(row, expected)


@pytest.mark.parametrize("lowercase", [False, True])
def test_lowercase_flag(tmp_path, lowercase):
    rows = {"cat": [1.0, 0.0], "Dog": [0.0, 1.0]}
    source = _write(tmp_path / "v.txt", _text(rows))
    obj = hub.load(
        export_text_embedding(source, tmp_path / "m", num_oov_buckets=0, lowercase=lowercase)
    )
    out = obj(tf.constant(["Cat Dog", "CAT cat"])).numpy()
    if lowercase:  # "dog" then misses "Dog" of the vocabulary
        _close(out, [[1, 0], [2 / np.sqrt(2), 0]])
    else:
        _close(out, [[0, 1], [1, 0]])


def test_oov_tokens_are_hashed_into_the_extra_rows(tmp_path, exported):
    source = exported["source"]
    obj = hub.load(export_text_embedding(source, tmp_path / "m", num_oov_buckets=3))
    (embeddings,) = obj.variables
    assert embeddings.shape == (6, 3)
    _close(embeddings.numpy()[3:], np.zeros((3, 3)))  # OOV rows start as zeros
    values = np.arange(18, dtype=np.float32).reshape(6, 3)
    embeddings.assign(values)
    words = ["lizard", "elephant", "Cat", "zebra", "x"]
    # StaticVocabularyTable semantics: vocab_size + fingerprint hash % buckets.
    vocab_table = tf.lookup.StaticVocabularyTable(
        tf.lookup.TextFileInitializer(
            str(tmp_path / "m" / "assets" / "tokens.txt"),
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        ),
        num_oov_buckets=3,
    )
    ids = vocab_table.lookup(tf.constant(words)).numpy()
    assert set(ids) <= {3, 4, 5}
    np.testing.assert_array_equal(
        ids, 3 + tf.strings.to_hash_bucket_fast(words, 3).numpy()
    )  # hashing as documented
    _close(obj(tf.constant(words)), values[ids])
    _close(obj(tf.constant(["lizard dog"])), [(values[ids[0]] + values[1]) / np.sqrt(2)])


def test_zero_oov_buckets_ignores_unknown_tokens(tmp_path, exported):
    obj = hub.load(export_text_embedding(exported["source"], tmp_path / "m", num_oov_buckets=0))
    assert obj.variables[0].shape == (3, 3)
    out = obj(tf.constant(["lizard dog", "lizard", "lizard cat lizard mouse"])).numpy()
    _close(out, [DOG, ZERO, _sqrtn(CAT, MOUSE)])  # not counted in the denominator


def test_sqrtn_combination_against_numpy(tmp_path):
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(7)]
    matrix = rng.normal(size=(7, 5)).astype(np.float32)
    source = _write(tmp_path / "r.txt", _text(dict(zip(words, matrix.tolist(), strict=True))))
    obj = hub.load(export_text_embedding(source, tmp_path / "m"))
    sentences = ["w0 w1 w2", "w3 w3 w3 w3", "w6", "w5 nope w4", "", "w2 w1 w0 w6 w5 w4 w3"]
    full = np.vstack([matrix, np.zeros((1, 5), np.float32)])
    expected = []
    for sentence in sentences:
        ids = [words.index(t) if t in words else 7 for t in sentence.split()]
        rows = full[ids]
        expected.append(rows.sum(axis=0) / np.sqrt(len(ids)) if ids else np.zeros(5))
    _close(obj(tf.constant(sentences)), expected)
    assert obj(tf.constant([], tf.string)).shape == (0, 5)


def test_token_input_without_preprocessing(tmp_path, exported):
    obj = hub.load(export_text_embedding(exported["source"], tmp_path / "m", preprocessing=False))
    tokens = tf.constant(["cat", "dog", "", "mouse", "cat,", "cat"])
    _close(obj(tokens), [CAT, DOG, ZERO, MOUSE, ZERO, CAT])  # "cat," is OOV (a zero row)
    spec = obj.signatures["serving_default"].structured_input_signature[1]["tokens"]
    assert spec.shape.as_list() == [None] and spec.dtype == tf.string


# --------------------------------------------------------------------------------------------
# TF1 Hub format


def test_tf1_module_in_a_graph(exported):
    with tf.Graph().as_default():
        module = hub.Module(str(exported["tf1"]))
        assert module.get_signature_names() == ["default"]
        (key,) = module.get_input_info_dict()
        info = module.get_input_info_dict()[key]
        assert key == "sentences" and info.dtype == tf.string
        assert info.get_shape().as_list() == [None]
        output = module.get_output_info_dict()["default"]
        assert output.dtype == tf.float32 and output.get_shape().as_list() == [None, 3]
        assert sorted(module.variable_map) == ["embeddings"]
        out = module(tf.constant(SENTENCES))
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            values = session.run(out)
    _close(values[0], 2 * CAT / np.sqrt(2))
    _close(values[1], DOG / np.sqrt(2))
    _close(values[2], ZERO)
    assert (exported["tf1"] / "assets" / "tokens.txt").read_bytes() == b"cat\ndog\nmouse\n"


def _graph_values(path: Path, inputs: object, matrix: np.ndarray) -> np.ndarray:
    with tf.Graph().as_default():
        module = hub.Module(str(path))
        out = module(inputs)
        variable = module.variable_map["embeddings"]
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            variable.load(matrix, session)
            return np.asarray(session.run(out))


@pytest.mark.parametrize("preprocessing", [True, False])
def test_tf1_and_tf2_give_the_same_numbers(tmp_path, exported, preprocessing):
    options = {"num_oov_buckets": 2, "lowercase": True, "preprocessing": preprocessing}
    tf2 = export_text_embedding(exported["source"], tmp_path / "tf2", **options)
    tf1 = export_text_embedding(exported["source"], tmp_path / "tf1", format="tf1", **options)
    if preprocessing:
        inputs = tf.constant(["Cat cat", "lizard, DOG!", "", "zebra; Mouse eel", "don't"])
    else:
        inputs = tf.constant(["Cat", "lizard", "DOG", "mouse", ""])
    obj2, obj1 = hub.load(tf2), hub.load(tf1)
    assert getattr(obj1, "_is_hub_module_v1", False)
    _close(obj1(inputs), obj2(inputs))
    # With distinct OOV rows, the hashing must agree too: TF2, TF1 in TF2, TF1 in a graph.
    matrix = np.arange(15, dtype=np.float32).reshape(5, 3) + 1
    obj2.variables[0].assign(matrix)
    obj1.variables[0].assign(matrix)
    expected = obj2(inputs).numpy()
    assert len({tuple(r) for r in expected}) == len(expected)  # all rows differ
    _close(obj1(inputs), expected)
    _close(_graph_values(Path(tf1), inputs.numpy(), matrix), expected)


def _table_ops(saved_model_pb: Path) -> list[tuple[str, bytes]]:
    """(op, shared_name) of every table-creating node in every graph and function."""
    from tfhub import protos

    found = []
    for raw in protos.SavedModelFile.FromString(saved_model_pb.read_bytes()).meta_graphs:
        meta = v1.MetaGraphDef.FromString(raw)
        nodes = list(meta.graph_def.node)
        for function in meta.graph_def.library.function:
            nodes.extend(function.node_def)
        found += [(n.op, n.attr["shared_name"].s) for n in nodes if "HashTable" in n.op]
    return found


@pytest.mark.parametrize("fmt", ["tf2", "tf1"])
def test_two_loaded_models_keep_their_own_vocabulary(tmp_path, fmt):
    first = _write(tmp_path / "a.txt", "cat 1 0\n")
    second = _write(tmp_path / "b.txt", "dog 0 1\n")
    a = hub.load(export_text_embedding(first, tmp_path / "a", format=fmt, num_oov_buckets=0))
    b = hub.load(export_text_embedding(second, tmp_path / "b", format=fmt, num_oov_buckets=0))
    _close(a(tf.constant(["cat dog"])), [[1, 0]])
    _close(b(tf.constant(["cat dog"])), [[0, 1]])
    # A table with a shared name is shared by every table of that name in the process.
    tables = _table_ops(tmp_path / "a" / "saved_model.pb")
    if fmt == "tf2":
        assert tables and all(op == "AnonymousHashTable" for op, _ in tables), tables
    else:  # sessions cannot use anonymous tables: a name unique to the export
        (table,) = tables
        assert table[1].startswith(b"text_embedding_vocabulary_")
        assert _table_ops(tmp_path / "b" / "saved_model.pb") != tables


# --------------------------------------------------------------------------------------------
# Fine-tuning with Keras 3


def test_keras_layer_fine_tunes_the_embedding(exported):
    layer = hub.KerasLayer(str(exported["tf2"]), trainable=True)
    model = keras.Sequential([keras.Input(shape=(), dtype="string"), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    assert len(layer.trainable_weights) == 1
    embeddings = layer.resolved_object.variables[0]
    before = embeddings.numpy().copy()
    x = tf.constant(["cat dog", "dog", "lizard cat", "cat"] * 2)
    y = np.array([1, 0, 1, 1] * 2, np.float32)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    after = embeddings.numpy()
    for row in (0, 1, 3):  # cat, dog and the OOV bucket of "lizard" received gradients
        assert not np.allclose(after[row], before[row])
    np.testing.assert_array_equal(after[2], before[2])  # "mouse" was never seen
    frozen = hub.KerasLayer(str(exported["tf2"]))
    assert frozen.trainable_weights == []


# --------------------------------------------------------------------------------------------
# CLI, progress


def test_cli_exports_in_process(tmp_path, exported, capsys):
    out = tmp_path / "cli"
    argv = ["export-text-embedding", str(exported["source"]), str(out), "--format", "tf1"]
    argv += ["--num-oov-buckets", "0", "--lowercase"]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out)
    obj = hub.load(str(out))
    _close(obj(tf.constant(["CAT lizard"])), [CAT])

    bad = _write(tmp_path / "bad.txt", "cat 1 2\ndog 1 2 3\n")
    assert cli.main(["export-text-embedding", str(bad), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "tfhub: error:" in err and "bad.txt: line 2" in err
    assert not (tmp_path / "x").exists()


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, exported, capsys, monkeypatch):
    export_text_embedding(exported["source"], tmp_path / "quiet", num_oov_buckets=0)
    assert "Reading" not in capsys.readouterr().err
    monkeypatch.setenv("TFHUB_DOWNLOAD_PROGRESS", "1")
    export_text_embedding(exported["source"], tmp_path / "loud", num_oov_buckets=0)
    assert "Reading vectors.txt" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Errors: the file and the line are named, nothing is left behind


BAD_TEXT = [
    ("dim.txt", "cat 1 2 3\ndog 1 2\n", ["line 2", "inconsistent dimension", "'dog'", "line 1"]),
    ("nan.txt", "cat 1 2\n\ndog 1 x2\n", ["line 3", "non-numeric", "'x2'"]),
    ("inf.txt", "cat 1 2\ndog nan 2\n", ["line 2", "'dog'", "finite"]),
    ("empty.txt", "", ["no vectors", "empty"]),
    ("blank.txt", "\n  \n\n", ["no vectors"]),
    ("novalue.txt", "cat\n", ["line 1", "no values"]),
    ("short.txt", "3 2\ncat 1 2\ndog 1 2\n", ["header", "announces 3", "holds 2"]),
    ("long.txt", "1 2\ncat 1 2\ndog 1 2\n", ["line 3", "more vectors"]),
    ("hdim.txt", "2 3\ncat 1 2\n", ["line 2", "expected 3", "header"]),
    ("zero.txt", "0 3\n", ["no vectors"]),
]


@pytest.mark.parametrize(("name", "content", "needles"), BAD_TEXT, ids=[b[0] for b in BAD_TEXT])
def test_bad_text_files_name_the_file_and_line(tmp_path, name, content, needles):
    source = _write(tmp_path / name, content)
    with pytest.raises(UsageError) as info:
        export_text_embedding(source, tmp_path / "out")
    message = str(info.value)
    assert str(source) in message
    for needle in needles:
        assert needle in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp dir, no output


def test_bad_binary_files(tmp_path):
    good = _binary(VECTORS)
    cases = {
        "cut_vector.bin": (good[:-6], ["entry 3", "'mouse'", "truncated"]),
        "cut_entries.bin": (good.replace(b"3 3\n", b"5 3\n", 1), ["entry 4", "3 of the 5"]),
        "extra.bin": (good.replace(b"3 3\n", b"2 3\n", 1), ["data after the 2 vectors"]),
        "header.bin": (b"cat 1.0 2.0\n", ["line 1", "header"]),
        "empty.bin": (b"", ["no vectors"]),
        "nan.bin": (
            _binary({"cat": [1.0, 2.0], "dog": [float("nan"), 0.0]}),
            ["entry 2", "'dog'", "finite"],
        ),
    }
    for name, (content, needles) in cases.items():
        source = _write(tmp_path / name, content)
        with pytest.raises(UsageError) as info:
            export_text_embedding(source, tmp_path / "out")
        message = str(info.value)
        assert str(source) in message, name
        for needle in needles:
            assert needle in message, (name, message)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_duplicate_tokens_keep_the_first_vector_and_warn(tmp_path, caplog):
    source = _write(tmp_path / "dup.txt", "cat 1 2\ndog 3 4\ncat 5 6\n")
    with caplog.at_level(logging.WARNING, logger="tfhub"):
        out = export_text_embedding(source, tmp_path / "m", num_oov_buckets=0)
    (record,) = [r for r in caplog.records if "duplicate" in r.getMessage()]
    assert "dup.txt: line 3" in record.getMessage() and "'cat'" in record.getMessage()
    assert (Path(out) / "assets" / "tokens.txt").read_bytes() == b"cat\ndog\n"
    _close(hub.load(out).variables[0].numpy(), [[1, 2], [3, 4]])


def test_arguments_and_export_dir_are_checked(tmp_path, exported):
    source = exported["source"]
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        export_text_embedding(source, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(UsageError, match="no such embedding file"):
        export_text_embedding(tmp_path / "missing.txt", tmp_path / "a")
    with pytest.raises(UsageError, match="format"):
        export_text_embedding(source, tmp_path / "a", format="tf3")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="num_oov_buckets"):
        export_text_embedding(source, tmp_path / "a", num_oov_buckets=-1)
    assert not (tmp_path / "a").exists()
    # An existing empty directory is fine: it is replaced by the module.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_text_embedding(source, empty, format="tf1") == str(empty)
    assert (empty / "tfhub_module.pb").exists()


# --------------------------------------------------------------------------------------------
# Streaming: memory stays far below the file size


def test_large_file_is_streamed(tmp_path):
    n_tokens, dim = 200_000, 50
    rng = np.random.default_rng(0)
    rows = [" ".join(f"{v:.6f}" for v in rng.normal(size=dim)) for _ in range(997)]
    source = tmp_path / "big.txt"
    with open(source, "w", encoding="utf8") as f:
        f.writelines(f"w{i} {rows[i % 997]}\n" for i in range(n_tokens))
    small = _write(tmp_path / "small.txt", _text(VECTORS))
    size = source.stat().st_size
    assert size > 90 << 20
    out = run_python(
        f"""
        import json, re, resource, time
        from tfhub.exporters.text_embedding import export_text_embedding

        def status(key):
            with open("/proc/self/status") as f:
                return int(re.search(key + r":\\s+(\\d+) kB", f.read()).group(1)) * 1024

        def reset_peak():
            try:  # Linux >= 4.0: VmHWM restarts from the current RSS
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                return True
            except OSError:
                return False

        # Warm up TensorFlow (tracing, saving) so that only the big file's cost is measured.
        export_text_embedding({str(small)!r}, {str(tmp_path / "warm")!r})
        stats = {{}}
        for fmt in ("tf2", "tf1"):
            exact = reset_peak()
            rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            before = status("VmRSS") if exact else rusage
            start = time.monotonic()
            export_text_embedding({str(source)!r}, {str(tmp_path)!r} + "/" + fmt, format=fmt)
            seconds = time.monotonic() - start
            rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            after = status("VmHWM") if exact else rusage
            stats[fmt] = {{"growth": after - before, "s": seconds, "exact": exact}}
        print(json.dumps(stats))
        """
    )
    stats = json.loads(out.strip().splitlines()[-1])
    matrix = n_tokens * dim * 4  # 40 MB of float32
    for fmt, stat in stats.items():
        print(
            f"{fmt}: file {size / 2**20:.0f} MiB, peak RSS growth {stat['growth'] / 2**20:.0f} "
            f"MiB ({'VmHWM' if stat['exact'] else 'ru_maxrss'}), {stat['s']:.1f} s"
        )
        # Python floats alone would take 10M x 32 bytes = 320 MB here; streaming costs one
        # float32 copy of the matrix (40 MB), 8 MB chunks, the vocabulary set and table
        # (measured: 65-85 MB). The bound leaves room for allocator noise.
        assert stat["growth"] < 3 * matrix, (fmt, stat)
    first = np.array(rows[0].split(), np.float32)
    for fmt in ("tf2", "tf1"):
        obj = hub.load(str(tmp_path / fmt))
        assert obj.variables[0].shape == (n_tokens + 1, dim)
        _close(obj(tf.constant(["w0", "w997 w0"])), [first, 2 * first / np.sqrt(2)])
        assert os.path.getsize(tmp_path / fmt / "assets" / "tokens.txt") > n_tokens * 3
