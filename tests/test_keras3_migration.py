"""The README's "Moving from tensorflow_hub" table, row by row where Keras 3 changes a habit."""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub.resolver as their_resolver

import tfhub as hub
from tests.helpers import run_python
from tests.test_keras3_text_classifier import child_env


def test_piece_save_dir_becomes_export_keras(tmp_path):
    inputs = keras.Input(shape=(4,))
    features = keras.layers.Dense(3, name="features")(inputs)
    full = keras.Model(inputs, keras.layers.Dense(1)(features))
    piece = keras.Model(full.input, full.get_layer("features").output)
    with pytest.raises(ValueError, match="extension"):
        piece.save(str(tmp_path / "piece"))  # the 0.15 habit fails on Keras 3
    hub.export_keras(piece, str(tmp_path / "piece"))
    layer = hub.KerasLayer(str(tmp_path / "piece"), trainable=True)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(layer(x), piece.predict(x, verbose=0), rtol=1e-6)
    assert len(layer.trainable_weights) == 2


def test_get_output_at_becomes_output(models):
    inputs = keras.Input(shape=(), dtype="string")
    layer = hub.KerasLayer(str(models["text"]))
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    assert not hasattr(layer, "get_output_at")
    embeddings = keras.Model(model.input, layer.output)
    assert embeddings.predict(np.array(["a b"]), verbose=0).shape == (1, 8)


def module_fn_with_v1_layers():
    x = tf.compat.v1.placeholder(tf.float32, [None, 3])
    hub.add_signature(inputs=x, outputs=tf.compat.v1.layers.dense(x, 2))


def test_v1_layers_in_module_fn_need_legacy_keras(tmp_path):
    assert not hasattr(tf, "layers")  # tf.layers.dense is gone either way
    with pytest.raises(AttributeError, match="not available with Keras 3"):
        hub.create_module_spec(module_fn_with_v1_layers)
    out = run_python(
        """
        import numpy as np, tensorflow as tf, tfhub as hub
        def module_fn():
            x = tf.compat.v1.placeholder(tf.float32, [None, 3])
            hub.add_signature(inputs=x, outputs=tf.compat.v1.layers.dense(x, 2))
        spec = hub.create_module_spec(module_fn)
        with tf.Graph().as_default():
            m = hub.Module(spec)
            y = m(np.ones((4, 3), np.float32))
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                print("SHAPE", sess.run(y).shape)
        """,
        env=child_env(TF_USE_LEGACY_KERAS="1"),
    )
    assert "SHAPE (4, 2)" in out


def test_default_cache_folders_differ_and_tfhub_cache_dir_is_shared(monkeypatch, tmp_path):
    monkeypatch.delenv("TFHUB_CACHE_DIR")
    theirs = their_resolver.tfhub_cache_dir(use_temp=True)
    assert theirs == os.path.join(tempfile.gettempdir(), "tfhub_modules")
    from tfhub import config

    assert str(config.cache_dir()) != theirs
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    assert their_resolver.tfhub_cache_dir(use_temp=True) == str(tmp_path)
    assert config.cache_dir() == tmp_path
