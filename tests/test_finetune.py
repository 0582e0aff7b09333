"""Fine-tuning and re-export (TF2 guide), a text classifier by URL, MirroredStrategy."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tfhub as hub
from tests.helpers import run_python

SENTENCES = tf.constant(
    ["good great fine", "great good", "fine good nice", "bad awful", "awful poor bad", "poor bad"]
    * 4
)
LABELS = np.array([1, 1, 1, 0, 0, 0] * 4, np.float32)


def _classifier(url: str, trainable: bool) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(), dtype="string"),
            hub.KerasLayer(url, trainable=trainable),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    return model


def test_text_classifier_on_a_hub_url_trains_and_predicts(server):
    model = _classifier(server.url("test/text/1"), trainable=False)
    embeddings = model.layers[0].resolved_object.embeddings
    before = embeddings.numpy().copy()
    history = model.fit(SENTENCES, LABELS, epochs=30, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    preds = model.predict(tf.constant(["good great", "bad awful"]), verbose=0)
    assert preds[0, 0] > 0.5 > preds[1, 0]
    np.testing.assert_array_equal(embeddings.numpy(), before)  # frozen: untouched


def test_fine_tuning_changes_the_hub_variables_and_reexport_shows_it(server, tmp_path):
    model = _classifier(server.url("test/text/1"), trainable=True)
    loaded = model.layers[0].resolved_object
    before = loaded.embeddings.numpy().copy()
    probe = tf.constant(["good great fine"])
    original_out = loaded(probe).numpy()
    model.fit(SENTENCES, LABELS, epochs=5, verbose=0)
    assert not np.allclose(loaded.embeddings.numpy(), before)
    # Re-export the fine-tuned SavedModel, as the guide describes, and reload it.
    tf.saved_model.save(loaded, str(tmp_path / "tuned"))
    reloaded = hub.load(str(tmp_path / "tuned"))
    np.testing.assert_allclose(reloaded.embeddings.numpy(), loaded.embeddings.numpy())
    np.testing.assert_allclose(reloaded(probe).numpy(), loaded(probe).numpy(), rtol=1e-6)
    assert not np.allclose(reloaded(probe).numpy(), original_out)
    # It is still a Reusable SavedModel: training flag, trainable variables, losses.
    assert len(reloaded.trainable_variables) == 1 and len(reloaded.regularization_losses) == 1
    layer = hub.KerasLayer(str(tmp_path / "tuned"), trainable=True)
    assert len(layer.trainable_weights) == 1


def test_dropout_runs_only_in_training_when_fine_tuning(models):
    layer = hub.KerasLayer(str(models["text"]), trainable=True)
    x = tf.constant(["a b c d e f"])
    np.testing.assert_allclose(layer(x, training=False), layer(x, training=False))
    assert np.count_nonzero(layer(x, training=True).numpy() == 0) > 0
    frozen = hub.KerasLayer(str(models["text"]))
    assert np.count_nonzero(frozen(x, training=True).numpy() == 0) == 0


def test_mirrored_strategy_on_two_logical_cpus(models):
    # Numeric inputs: Keras 3 itself cannot feed string tensors to fit() under
    # MirroredStrategy (its own Hashing layer fails the same way).
    out = run_python(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, numpy as np
        import tfhub as hub
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = hub.KerasLayer({str(models["flag"])!r}, trainable=True)
            model = keras.Sequential([keras.Input(shape=(2,)), layer, keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(0.01), "mse")
        w = layer.resolved_object.w
        print("mirrored", type(w).__name__)
        before = w.numpy().copy()
        x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        model.fit(x, x.sum(axis=1, keepdims=True), batch_size=8, epochs=2, verbose=0)
        print("replicas", strategy.num_replicas_in_sync)
        print("changed", not np.allclose(before, w.numpy()))
        """
    )
    assert "mirrored MirroredVariable" in out
    assert "replicas 2" in out and "changed True" in out
