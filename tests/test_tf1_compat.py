"""TF1 Hub modules cross the library boundary both ways, checked with the real packages.

tensorflow_hub 0.15 (the last release with the TF1 API) runs on TF 2.21 in a subprocess,
with a stand-in `tf.compat.v1.estimator` (gone from TF) and TF_USE_LEGACY_KERAS=1; the
Makefile installs it into .venv/tfhub015. tensorflow_hub 0.16 is a plain test dependency.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import run_python
from tests.helpers import tf1_modules as mods

v1 = tf.compat.v1
TFHUB015 = Path(sys.prefix) / "tfhub015"  # beside the virtualenv that runs the tests


@pytest.fixture(autouse=True, scope="module")
def _tensorflow_hub_015_is_installed() -> None:
    """No silent skip: without the peer package these tests fail, saying how to install it."""
    if not (TFHUB015 / "tensorflow_hub").is_dir():
        pytest.fail(
            f"tensorflow_hub 0.15 is not installed in {TFHUB015}: run `make install`, or "
            f"`pip install --no-deps --target {TFHUB015} tensorflow_hub==0.15.0`",
            pytrace=False,
        )


PRELUDE_015 = f"""
import json, os, sys, types
sys.path.insert(0, {str(TFHUB015)!r})
import numpy as np
import tensorflow as tf
tf.compat.v1.estimator = types.SimpleNamespace(Exporter=object)  # removed from TF 2.16+
import tensorflow_hub as hub015
assert hub015.__version__ == "0.15.0", hub015.__version__
v1 = tf.compat.v1
"""


def _session_values(fetches):
    with v1.Session() as session:
        session.run([v1.global_variables_initializer(), v1.tables_initializer()])
        return session.run(fetches)


def test_modules_written_by_tensorflow_hub_015_load_with_ours(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat\ndog\n")
    out = run_python(
        PRELUDE_015
        + f"""
def module_fn(is_training):
    tokens = v1.placeholder(tf.string, [None])
    x = v1.placeholder(tf.float32, [None, 3])
    vocab = tf.constant({str(vocab)!r})
    v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab)
    table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                      tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)
    w = v1.get_variable("w", initializer=[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = tf.matmul(x, w)
    if is_training:
        y = y * 10.0
    hub015.add_signature(inputs=x, outputs=y)
    hub015.add_signature("ids", inputs=tokens, outputs=table.lookup(tokens))
spec = hub015.create_module_spec(module_fn, [(set(), dict(is_training=False)),
                                             ({{"train"}}, dict(is_training=True))])
with tf.Graph().as_default():
    m = hub015.Module(spec)
    y = m([[1.0, 1.0, 1.0]])
    ids = m(["dog", "bird"], signature="ids")
    with v1.Session() as s:
        s.run([v1.global_variables_initializer(), v1.tables_initializer()])
        s.run(m.variable_map["w"].assign(m.variable_map["w"] * 2))
        print(json.dumps({{"y": s.run(y).tolist(), "ids": s.run(ids).tolist()}}))
        m.export({str(tmp_path / "m015")!r}, s)
""",
        env={"TF_USE_LEGACY_KERAS": "1"},
    )
    theirs = json.loads(out.strip().splitlines()[-1])
    vocab.unlink()  # the module must carry its own copy
    with tf.Graph().as_default():
        m = hub.Module(str(tmp_path / "m015"))
        y = m([[1.0, 1.0, 1.0]])
        ids = m(["dog", "bird"], signature="ids")
        train = hub.Module(str(tmp_path / "m015"), tags={"train"}, name="t")([[1.0, 1.0, 1.0]])
        values = _session_values([y, ids, train])
    np.testing.assert_allclose(values[0], theirs["y"])
    np.testing.assert_allclose(values[0], [[18.0, 24.0]])  # the exported (doubled) weights
    np.testing.assert_array_equal(values[1], theirs["ids"])
    np.testing.assert_allclose(values[2], [[180.0, 240.0]])
    obj = hub.load(str(tmp_path / "m015"))
    np.testing.assert_allclose(obj(np.ones((1, 3), np.float32)), [[18.0, 24.0]])
    np.testing.assert_allclose(obj(np.ones((1, 3), np.float32), training=True), [[180.0, 240.0]])


def test_modules_written_by_us_load_with_tensorflow_hub_015_and_016(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat\ndog\nmouse\n")
    spec = hub.create_module_spec(mods.make_vocab_module_fn(vocab))
    with tf.Graph().as_default():
        m = hub.Module(spec)
        ours = m(["mouse", "zebra"], as_dict=True)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            expected = session.run(ours)
            m.export(str(tmp_path / "ours"), session)
    image = hub.create_module_spec(mods.image_module_fn)
    with tf.Graph().as_default():
        m = hub.Module(image)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            m.export(str(tmp_path / "image"), session)
    vocab.unlink()
    out = run_python(
        PRELUDE_015
        + f"""
with tf.Graph().as_default():
    m = hub015.Module({str(tmp_path / "ours")!r})
    out = m(["mouse", "zebra"], as_dict=True)
    with v1.Session() as s:
        s.run([v1.global_variables_initializer(), v1.tables_initializer()])
        values = s.run(out)
print(json.dumps({{"ids": values["ids"].tolist(), "default": values["default"].tolist(),
                  "size": hub015.get_expected_image_size(
                      hub015.load_module_spec({str(tmp_path / "image")!r}))}}))
""",
        env={"TF_USE_LEGACY_KERAS": "1"},
    )
    theirs = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_array_equal(theirs["ids"], expected["ids"])
    np.testing.assert_allclose(theirs["default"], expected["default"])
    assert theirs["size"] == [7, 9]
    out = run_python(
        f"""
import json, numpy as np, tensorflow_hub as tfh
obj = tfh.load({str(tmp_path / "ours")!r})
out = obj.signatures["default"](default=np.array(["mouse", "zebra"]))
layer = tfh.KerasLayer({str(tmp_path / "ours")!r}, output_key="ids")
print(json.dumps({{"ids": out["ids"].numpy().tolist(),
                  "layer": layer(np.array(["cat"])).numpy().tolist()}}))
"""
    )
    theirs = json.loads(out.strip().splitlines()[-1])
    assert theirs == {"ids": expected["ids"].tolist(), "layer": [0]}
