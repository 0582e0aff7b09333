"""``hub.convert`` / ``tfhub convert`` (issue 12, item 5): assets and table initializers move
with the converted model, its outputs are checked against the TF1 module run in a Session, a
mismatch fails, and a non-empty destination is refused; nothing is ever half-written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO, run_python
from tfhub import cli
from tfhub.errors import ConversionError
from tfhub.exporters.text_embedding import export_text_embedding

v1 = tf.compat.v1
VECTORS = "cat 1.11 2.56 3.45\ndog 1.0 2.0 3.0\nmouse 0.5 0.1 0.6\n"
SENTENCES = ["Cat dog", "mouse, lizard", "", "DOG"]
# Children import the tfhub this process runs (a checkout's src/) and the tests package.
SRC = Path(hub.__file__).resolve().parents[1]
CHILD_PATH = {"PYTHONPATH": os.pathsep.join([str(SRC), str(REPO)])}


def _session_values(path: str, inputs: object) -> np.ndarray:
    with tf.Graph().as_default():
        outputs = hub.Module(path)(inputs)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            return np.asarray(session.run(outputs))


def _tfhub(*args: str) -> subprocess.CompletedProcess[str]:
    """``tfhub ARGS`` in this process (``python -m tfhub.cli`` is test_cli's; the process
    boundary that matters here is the fresh one that loads the converted model)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(list(args))
    return subprocess.CompletedProcess(["tfhub", *args], code, stdout.getvalue(), stderr.getvalue())


def _export(module_fn, path: Path) -> str:
    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(module_fn))
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            module.export(str(path), session)
    return str(path)


def _leftovers(parent: Path) -> list[str]:
    """Staging directories (".<name>.<hex>.tmp") left beside a destination."""
    return [name for name in os.listdir(parent) if name.startswith(".")]


def _listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_vocab_module_converts_and_works_in_a_fresh_process_elsewhere(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(VECTORS)
    module = export_text_embedding(
        vectors, tmp_path / "tf1", format="tf1", lowercase=True, num_oov_buckets=2
    )
    # Distinct OOV rows: the hashing must survive the conversion too.
    matrix_module = tmp_path / "tf1_tuned"
    with tf.Graph().as_default():
        m = hub.Module(module)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            m.variable_map["embeddings"].load(
                np.arange(15, dtype=np.float32).reshape(5, 3) + 1, session
            )
            m.export(str(matrix_module), session)
    expected = _session_values(str(matrix_module), SENTENCES)
    result = _tfhub("convert", str(matrix_module), str(tmp_path / "converted"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "converted")
    assert (tmp_path / "converted" / "assets" / "tokens.txt").read_text() == "cat\ndog\nmouse\n"
    # Move the result and remove the module: the model needs nothing of either place.
    moved = tmp_path / "elsewhere" / "model"
    shutil.move(tmp_path / "converted", moved)
    shutil.rmtree(matrix_module)
    shutil.rmtree(module)
    out = run_python(
        f"""
        import json, tensorflow as tf, tfhub as hub
        print("tfhub from", hub.__file__)
        obj = hub.load({str(moved)!r})
        again = hub.load({str(moved)!r})  # a second copy gets its own, initialised table
        sentences = tf.constant({SENTENCES!r})
        print("JSON", json.dumps({{
            "call": obj(sentences).numpy().tolist(),
            "signature": obj.signatures["serving_default"](sentences=sentences)["default"]
                .numpy().tolist(),
            "again": again(sentences).numpy().tolist(),
            "trainable": len(obj.trainable_variables),
        }}))
        """,
        env=CHILD_PATH,
    )
    assert f"tfhub from {SRC}" in out
    values = json.loads(out.split("JSON ", 1)[1])
    assert len({tuple(row) for row in expected}) == len(expected)
    for key in ("call", "signature", "again"):
        np.testing.assert_allclose(values[key], expected, rtol=1e-6)
    assert values["trainable"] == 1


def _strings_module_fn():
    words = v1.placeholder(tf.string, [None])
    counts = v1.placeholder(tf.int32, [None, 2])
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(["cat", "dog"], [7, 9], tf.string, tf.int64), -1
    )
    hub.add_signature(
        inputs=words, outputs={"default": table.lookup(words), "upper": tf.strings.upper(words)}
    )
    hub.add_signature("sum", inputs={"counts": counts}, outputs=tf.reduce_sum(counts, axis=1))


def test_string_int_outputs_and_every_signature_are_converted(tmp_path):
    module = _export(_strings_module_fn, tmp_path / "strings")
    hub.convert(module, str(tmp_path / "out"))
    obj = hub.load(str(tmp_path / "out"))
    out = obj.signatures["serving_default"](default=tf.constant(["dog", "eel", "cat"]))
    assert out["default"].numpy().tolist() == [9, -1, 7]
    assert out["upper"].numpy().tolist() == [b"DOG", b"EEL", b"CAT"]
    summed = obj.signatures["sum"](counts=tf.constant([[1, 2], [3, 4]]))["default"]
    assert summed.numpy().tolist() == [3, 7]


def _noisy_module_fn():
    x = v1.placeholder(tf.float32, [None, 4])
    w = v1.get_variable("w", initializer=tf.ones([4, 64]))
    # Dropout left on at inference: every run gives other numbers (64 outputs per example, so
    # two runs keep the same units with probability 2**-192, not the 1/64 of 2 outputs).
    hub.add_signature(inputs=x, outputs=tf.nn.dropout(tf.matmul(x, w), rate=0.5))


def test_a_module_whose_outputs_cannot_be_reproduced_is_not_converted(tmp_path):
    module = _export(_noisy_module_fn, tmp_path / "noisy")
    target = tmp_path / "out"
    with pytest.raises(
        ConversionError, match=r"output 'default' of signature 'serving_default' differs"
    ):
        hub.convert(module, str(target))
    assert not target.exists() and _leftovers(tmp_path) == []
    result = _tfhub("convert", module, str(target))
    assert result.returncode == 2  # the status of every error of ours outside EXIT_CODES
    assert "differs from the TF1 module" in result.stderr and "Traceback" not in result.stderr
    assert not target.exists() and _leftovers(tmp_path) == []


def test_a_non_empty_destination_is_refused_and_left_untouched(tmp_path):
    module = _export(_plain_module_fn, tmp_path / "plain")
    target = tmp_path / "dst"
    (target / "sub").mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    (target / "sub" / "saved_model.pb").write_bytes(b"not a model")
    before = _listing(target)
    result = _tfhub("convert", module, str(target))
    assert result.returncode != 0
    assert str(target) in result.stderr and "not empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert _listing(target) == before
    assert _leftovers(tmp_path) == []
    # An empty directory is fine (and becomes the model).
    (tmp_path / "empty").mkdir()
    hub.convert(module, str(tmp_path / "empty"))
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(hub.load(str(tmp_path / "empty"))(x), x * 2 + 1)


def _plain_module_fn():
    x = v1.placeholder(tf.float32, [None, 2])
    a = v1.get_variable("a", initializer=2.0)
    hub.add_signature(inputs=x, outputs=x * a + 1)
