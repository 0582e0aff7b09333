"""Compatibility with the real tensorflow_hub package and with legacy Keras (tf_keras)."""

from __future__ import annotations

import tensorflow_hub  # a test dependency: a missing one fails, never skips

import tfhub as hub
from tests.helpers import run_python


def test_cache_filled_by_tensorflow_hub_is_reused_offline(server, cache_dir, monkeypatch):
    handle = server.url("test/text/1")
    out = run_python(
        f"""
        import tensorflow_hub as tfh
        print(tfh.resolve({handle!r}))
        """,
        env={"TFHUB_CACHE_DIR": str(cache_dir)},
    )
    their_path = out.strip().splitlines()[-1]
    assert server.count("test/text/1") == 1
    server.stop()  # the network is gone
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    assert hub.resolve(handle) == their_path
    obj = hub.load(handle)
    assert obj(["hello world"]).shape == (1, 8)


def test_cache_filled_by_us_is_reused_by_tensorflow_hub(server, cache_dir):
    handle = server.url("test/mul/1")
    ours = hub.resolve(handle)
    server.stop()
    out = run_python(
        f"""
        import tensorflow_hub as tfh
        print(tfh.resolve({handle!r}))
        print(float(tfh.load({handle!r})(3.0)))
        """,
        env={"TFHUB_CACHE_DIR": str(cache_dir)},
    )
    assert out.split() == [ours, "6.0"]


def test_tensorflow_hub_keras_layer_is_rejected_by_keras3_but_ours_is_not(models):
    import re

    import keras
    import pytest

    with pytest.raises(ValueError, match=re.escape("Only instances of `keras.Layer`")):
        keras.Sequential([tensorflow_hub.KerasLayer(str(models["mul"]))])
    model = keras.Sequential([hub.KerasLayer(str(models["mul"]))])
    assert isinstance(model.layers[0], keras.Layer)


def test_legacy_keras_layer_with_tf_use_legacy_keras(models):
    out = run_python(
        f"""
        import numpy as np, tensorflow as tf, tf_keras, tfhub as hub
        layer = hub.KerasLayer({str(models["mul"])!r})
        print("is tf_keras layer", isinstance(layer, tf_keras.layers.Layer))
        print("out", layer(tf.constant([10.0, 20.0])).numpy().tolist())
        layer.trainable = True
        print("trainable", [float(w.numpy()) for w in layer.trainable_weights])
        print("losses", [round(float(x), 6) for x in layer.losses])
        model = tf.keras.Sequential([tf.keras.Input(shape=(1,)), layer])
        model.compile(tf.keras.optimizers.SGD(0.1), "mse")
        model.fit(np.ones((8, 1)), np.full((8, 1), 3.0), epochs=2, verbose=0)
        print("tuned", float(layer.resolved_object.v.numpy()) != 2.0)
        cfg = layer.get_config()
        print("config", cfg["handle"] == {str(models["mul"])!r}, cfg["trainable"])
        """,
        env={"TF_USE_LEGACY_KERAS": "1"},
    )
    assert "is tf_keras layer True" in out
    assert "out [20.0, 40.0]" in out
    assert "trainable [2.0]" in out
    assert "losses [0.004]" in out
    assert "tuned True" in out
    assert "config True True" in out
