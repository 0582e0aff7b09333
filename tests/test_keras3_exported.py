"""``hub.KerasLayer`` on what Keras 3's ``model.export()`` and ``tf.saved_model.save(model)``
write (issue 12, item 8): the only serving signature is used, said in a log line; anything
else is an error that names ``signature=`` and ``hub.export_keras``."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import run_python
from tests.test_keras3_text_classifier import child_env

X = np.arange(6, dtype=np.float32).reshape(2, 3)


def dense_model() -> keras.Model:
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(2, kernel_initializer="glorot_uniform")(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("writer", ["model.export", "tf.saved_model.save"])
def test_the_only_serving_signature_is_used_and_logged(tmp_path, caplog, writer):
    model = dense_model()
    if writer == "model.export":
        model.export(str(tmp_path / "m"), verbose=False)  # serve + serving_default (aliases)
    else:
        tf.saved_model.save(model, str(tmp_path / "m"))  # serving_default only
    caplog.set_level(logging.INFO, logger="tfhub")
    layer = hub.KerasLayer(str(tmp_path / "m"))
    assert "only serving signature 'serving_default'" in caplog.text
    assert "hub.export_keras" in caplog.text
    np.testing.assert_allclose(layer(X), model.predict(X, verbose=0), rtol=1e-6)
    reuse = keras.Sequential([keras.Input(shape=(3,)), layer, keras.layers.Dense(1)])
    assert reuse.predict(X, verbose=0).shape == (2, 1)
    assert "signature" not in layer.get_config()  # chosen again when the config is loaded
    reuse.save(tmp_path / "reuse.keras")
    reloaded = keras.models.load_model(tmp_path / "reuse.keras")
    np.testing.assert_allclose(
        reloaded.predict(X, verbose=0), reuse.predict(X, verbose=0), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"hub\.export_keras"):
        hub.KerasLayer(str(tmp_path / "m"), trainable=True)(X)


def test_several_outputs_and_inputs_of_an_exported_model(tmp_path):
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(3,), name="b")
    model = keras.Model(
        {"a": a, "b": b}, {"sum": keras.layers.Add()([a, b]), "first": keras.layers.Dense(1)(a)}
    )
    model.export(str(tmp_path / "m"), verbose=False)
    out = hub.KerasLayer(str(tmp_path / "m"))({"a": X, "b": 2 * X})
    assert sorted(out) == ["first", "sum"]
    np.testing.assert_allclose(out["sum"], 3 * X)
    summed = hub.KerasLayer(str(tmp_path / "m"), output_key="sum")({"a": X, "b": X})
    np.testing.assert_allclose(summed, 2 * X)
    with pytest.raises(
        ValueError, match=r"takes the inputs \['a', 'b'\]: call the layer on a dict"
    ):
        hub.KerasLayer(str(tmp_path / "m"))(X)


class TwoSignatures(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def triple(self, x):
        return {"y": x * self.w}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def negate(self, x):
        return {"y": -x}


def test_not_callable_with_several_signatures_or_none_names_the_fix(tmp_path):
    module = TwoSignatures()
    tf.saved_model.save(
        module,
        str(tmp_path / "two"),
        signatures={"serving_default": module.triple, "negate": module.negate},
    )
    with pytest.raises(
        ValueError, match=r"several signatures \['negate', 'serving_default'\]"
    ) as e:
        hub.KerasLayer(str(tmp_path / "two"))
    assert "signature=" in str(e.value) and "hub.export_keras" in str(e.value)
    assert isinstance(e.value, hub.UsageError)
    picked = hub.KerasLayer(str(tmp_path / "two"), signature="negate", output_key="y")
    np.testing.assert_allclose(picked({"x": tf.constant([1.0])}), [-1.0])
    tf.saved_model.save(tf.Module(), str(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"not callable and has no signatures.*hub\.export_keras"):
        hub.KerasLayer(str(tmp_path / "empty"))


def test_same_numbers_as_tensorflow_hub_with_the_signature_spelled_out(tmp_path):
    """tensorflow_hub 0.16 (tf_keras) needs signature= and output_key= for these directories;
    with them it computes what tfhub computes without them."""
    model = dense_model()
    model.export(str(tmp_path / "m"), verbose=False)
    ours = hub.KerasLayer(str(tmp_path / "m"))(X).numpy()
    code = f"""
        import json, numpy as np, tensorflow_hub as hub
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        try:
            hub.KerasLayer({str(tmp_path / "m")!r})
            bare = "accepted"
        except ValueError as e:
            bare = str(e)
        layer = hub.KerasLayer({str(tmp_path / "m")!r}, signature="serving_default",
                               output_key="output_0")
        print("RESULT", json.dumps({{"bare": bare, "out": layer(x).numpy().tolist()}}))
        """
    out = run_python(code, env=child_env(TF_USE_LEGACY_KERAS="1"))
    theirs = json.loads([x for x in out.splitlines() if x.startswith("RESULT ")][-1][7:])
    assert "Signature name has to be specified" in theirs["bare"]
    np.testing.assert_allclose(ours, theirs["out"], rtol=1e-6)
