"""hub.load: Reusable SavedModels from paths and URLs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub


def test_load_by_url_gives_the_reusable_interface(server):
    obj = hub.load(server.url("test/mul/1"))
    np.testing.assert_allclose(obj(tf.constant([10.0, 20.0])), [20.0, 40.0])
    assert [v.numpy() for v in obj.variables] == [2.0]
    assert [v.numpy() for v in obj.trainable_variables] == [2.0]
    assert len(obj.regularization_losses) == 1
    np.testing.assert_allclose(obj.regularization_losses[0](), 0.004, rtol=1e-6)
    assert obj._is_hub_module_v1 is False


def test_training_argument_and_signatures(models):
    flag = hub.load(str(models["flag"]))
    x = tf.constant([[1.0, 1.0]])
    np.testing.assert_allclose(flag(x, training=False), [[6.0]])
    np.testing.assert_allclose(flag(x, training=True), [[1006.0]])
    text = hub.load(models["text"])
    out = text.signatures["serving_default"](sentences=tf.constant(["a b", ""]))
    assert out["default"].shape == (2, 8)
    np.testing.assert_allclose(out["default"][1], np.zeros(8))
    d = hub.load(str(models["dict"]))
    res = d.signatures["combine"](a=tf.ones([1, 3]), b=tf.ones([1, 3]), offset=tf.constant(1.0))
    np.testing.assert_allclose(res["sum"], [[3.0, 3.0, 3.0]])


def test_tags_and_options(models):
    obj = hub.load(str(models["mul"]), tags=["serve"], options=tf.saved_model.LoadOptions())
    np.testing.assert_allclose(obj(tf.constant(1.0)), 2.0)
    with pytest.raises(ValueError, match="LoadOptions"):
        hub.load(str(models["mul"]), options={"x": 1})


def test_directory_without_saved_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(hub.NotAModelError, match=r"contains neither 'saved_model.pb' nor") as e:
        hub.load(str(tmp_path))
    assert isinstance(e.value, ValueError) and e.value.handle == str(tmp_path)


@pytest.mark.parametrize("handle", [None, 3, b"bytes"])
def test_non_string_handle(handle):
    with pytest.raises(ValueError, match="Expected a string, got"):
        hub.load(handle)


def test_missing_path(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        hub.load(str(tmp_path / "missing"))


def test_tf1_hub_format_loads_untagged_graph_with_signatures(server):
    obj = hub.load(server.url("test/tf1/1"))
    assert obj._is_hub_module_v1 is True
    assert sorted(obj.signatures) == ["default"]
    np.testing.assert_allclose(obj(tf.constant([[1.0, 1.0]])), [[3.0]])  # callable now
    out = obj.signatures["default"](default=tf.constant([[1.0, 1.0]]))
    np.testing.assert_allclose(out["default"], [[3.0]])
    np.testing.assert_allclose(out["double"], [[6.0]])
    train = hub.load(server.url("test/tf1/1"), tags=["train"])
    assert sorted(train.signatures) == ["default"]
