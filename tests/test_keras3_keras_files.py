"""A ``.keras`` file with a ``hub.KerasLayer`` loads in a new process after ``import tfhub``
(issue 12, item 2), and the handle it names is loaded under the strict op policy."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import run_python
from tests.test_keras3_text_classifier import SENTENCES, child_env, dense_weights


def tutorial_model(handle: str) -> keras.Model:
    model = keras.Sequential(
        [
            hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=True),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.layers[1].set_weights(dense_weights()[:2])
    model.layers[2].set_weights(dense_weights()[2:])
    return model


def result(out: str) -> dict:
    return json.loads([x for x in out.splitlines() if x.startswith("RESULT ")][-1][7:])


def test_load_model_in_a_new_process_after_only_import_tfhub(models, tmp_path):
    model = tutorial_model(str(models["text"]))
    model.save(tmp_path / "m.keras")
    expected = model.predict(np.array(SENTENCES), verbose=0)
    tfhub_first = f"""
        import json, sys
        import tfhub
        loaded_early = sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules)
        import keras
        model = keras.models.load_model({str(tmp_path / "m.keras")!r})
        print("RESULT", json.dumps({{
            "early": loaded_early, "tfhub": tfhub.__file__,
            "layer": type(model.layers[0]).__module__,
            "pred": model.predict({SENTENCES!r}, verbose=0).tolist()}}))
        """
    out = result(run_python(tfhub_first, env=child_env()))
    assert out["early"] == []  # import tfhub imported neither TensorFlow nor Keras
    assert out["tfhub"] == hub.__file__
    assert out["layer"] == "tfhub.savedmodel.keras_layer"
    np.testing.assert_allclose(out["pred"], expected, rtol=1e-5)
    keras_first = f"""
        import json
        import tensorflow as tf
        import keras
        import tfhub
        model = tf.keras.models.load_model({str(tmp_path / "m.keras")!r})
        print("RESULT", json.dumps(model.predict({SENTENCES!r}, verbose=0).tolist()))
        """
    np.testing.assert_allclose(
        result(run_python(keras_first, env=child_env())), expected, rtol=1e-5
    )


def test_tf_keras_files_load_in_a_new_process_like_tensorflow_hub(models, tmp_path):
    """TF_USE_LEGACY_KERAS=1: ours and tensorflow_hub 0.16 save the same model (same weights);
    a new process loads ours after only `import tfhub` (theirs needs custom_objects), with the
    same predictions as theirs."""
    handle = str(models["text"])
    save = f"""
        import json, numpy as np, tensorflow as tf, tensorflow_hub, tfhub
        rng = np.random.default_rng(0)
        W = [rng.normal(size=s).astype("float32") for s in [(8, 16), (16,), (16, 1), (1,)]]
        preds = {{}}
        for name, hub in (("ours", tfhub), ("theirs", tensorflow_hub)):
            model = tf.keras.Sequential([
                hub.KerasLayer({handle!r}, input_shape=[], dtype=tf.string, trainable=True),
                tf.keras.layers.Dense(16, activation="relu"), tf.keras.layers.Dense(1)])
            model.layers[1].set_weights(W[:2]); model.layers[2].set_weights(W[2:])
            model.save({str(tmp_path)!r} + "/" + name + ".keras")
            # tensorflow_hub 0.16 needs custom_objects here; tfhub does not.
            custom = {{"KerasLayer": hub.KerasLayer}} if name == "theirs" else None
            reloaded = tf.keras.models.load_model(
                {str(tmp_path)!r} + "/" + name + ".keras", custom_objects=custom)
            preds[name] = reloaded.predict(tf.constant({SENTENCES!r}), verbose=0).tolist()
        print("RESULT", json.dumps(preds))
        """
    saved = result(run_python(save, env=child_env(TF_USE_LEGACY_KERAS="1")))
    np.testing.assert_allclose(saved["ours"], saved["theirs"], rtol=1e-5)
    load = f"""
        import json, sys, tfhub
        early = "tensorflow" in sys.modules
        import tensorflow as tf
        model = tf.keras.models.load_model({str(tmp_path / "ours.keras")!r})
        print("RESULT", json.dumps({{"early": early, "type": type(model.layers[0]).__module__,
            "pred": model.predict(tf.constant({SENTENCES!r}), verbose=0).tolist()}}))
        """
    out = result(run_python(load, env=child_env(TF_USE_LEGACY_KERAS="1")))
    assert out["early"] is False
    assert out["type"] == "tfhub.savedmodel.legacy_keras_layer"
    np.testing.assert_allclose(out["pred"], saved["theirs"], rtol=1e-5)


class FileWriter(tf.Module):
    """A model whose call writes a file: what a hostile handle in a .keras file could do."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.scale = tf.Variable(2.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x):
        tf.io.write_file(self.target, "written by the model")
        return x * self.scale


def test_a_keras_file_naming_a_model_that_reaches_outside_is_refused(tmp_path, monkeypatch):
    target = tmp_path / "payload.txt"
    tf.saved_model.save(FileWriter(str(target)), str(tmp_path / "writer"))
    model = keras.Sequential([keras.Input(shape=()), hub.KerasLayer(str(tmp_path / "writer"))])
    model.save(tmp_path / "m.keras")
    assert not target.exists()  # building the model traced the call, never ran it
    for policy in (None, "warn", "error"):  # whatever TFHUB_CHECK_OPS says
        if policy:
            monkeypatch.setenv("TFHUB_CHECK_OPS", policy)
        # Keras wraps the layer's error in its own TypeError, with the message.
        with pytest.raises(TypeError, match=r"(?s)Refusing to rebuild hub.KerasLayer.*WriteFile"):
            keras.models.load_model(tmp_path / "m.keras")
        with pytest.raises(TypeError, match=r"(?s)strict op policy.*TFHUB_CHECK_OPS=off") as err:
            hub.KerasLayer.from_config(model.layers[0].get_config())
        assert str(tmp_path / "writer") in str(err.value) and "WriteFile" in str(err.value)
    assert not target.exists()
    # The user who trusts the file says so; then the model (and its payload) runs.
    monkeypatch.setenv("TFHUB_CHECK_OPS", "off")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(np.array([1.0, 2.0]), verbose=0), [2.0, 4.0])
    assert target.read_text() == "written by the model"


def test_building_a_layer_yourself_keeps_the_usual_policy(tmp_path, caplog):
    """Only configs (files) get the strict policy; code that names the handle is the user's."""
    tf.saved_model.save(FileWriter(str(tmp_path / "out.txt")), str(tmp_path / "writer"))
    layer = hub.KerasLayer(str(tmp_path / "writer"))
    np.testing.assert_allclose(layer(tf.constant([3.0])), [6.0])
    assert (tmp_path / "out.txt").exists()
    assert "WriteFile" in caplog.text  # the default policy (warn) still says so
