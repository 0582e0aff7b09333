"""The text-classification habits of tensorflow_hub users, on Keras 3 (issue 12, item 1).

Each pattern runs as a user writes it (``tf.keras``, which is Keras 3 here), and its numbers are
compared with the real ``tensorflow_hub`` 0.16 on ``tf_keras`` (run in a fresh process with
``TF_USE_LEGACY_KERAS=1``) on the same SavedModel, with the same Dense weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO, run_python

SENTENCES = ["good movie", "bad film", "great", "awful stuff"]
LABELS = [1, 0, 1, 0]


def child_env(**extra: str) -> dict[str, str]:
    """The child imports the same tfhub as this process (a worktree's, not the installed one)."""
    return {"PYTHONPATH": f"{Path(hub.__file__).resolve().parents[1]}:{REPO}", **extra}


def dense_weights() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=s).astype("float32") for s in [(8, 16), (16,), (16, 1), (1,)]]


PEER = """
import json, numpy as np, tensorflow as tf
import tensorflow_hub as hub
handle, sentences, labels = {handle!r}, {sentences!r}, {labels!r}
rng = np.random.default_rng(0)
W = [rng.normal(size=s).astype("float32") for s in [(8, 16), (16,), (16, 1), (1,)]]
out = {{}}
hub_layer = hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=True)
model = tf.keras.Sequential()
model.add(hub_layer)
model.add(tf.keras.layers.Dense(16, activation="relu"))
model.add(tf.keras.layers.Dense(1))
model.layers[1].set_weights(W[:2]); model.layers[2].set_weights(W[2:])
out["tutorial_before"] = model.predict(tf.constant(sentences), verbose=0).tolist()
for kind in ("str", "object"):
    m = tf.keras.Sequential([hub.KerasLayer(handle), tf.keras.layers.Dense(16, activation="relu"),
                             tf.keras.layers.Dense(1)])
    out[kind + "_call"] = m(tf.constant(sentences)).numpy().tolist()
    m.layers[1].set_weights(W[:2]); m.layers[2].set_weights(W[2:])
    m.compile("adam", "mse")
    h = m.fit(np.array(sentences, dtype=kind), np.array(labels, np.float32), epochs=2, verbose=0)
    out[kind + "_loss"] = h.history["loss"]
    out[kind + "_predict_list"] = m.predict(sentences, verbose=0).tolist()
print("RESULT", json.dumps(out))
"""


@pytest.fixture(scope="module")
def peer(models) -> dict[str, list]:
    """What tensorflow_hub 0.16 + tf_keras computes for the same patterns."""
    code = PEER.format(handle=str(models["text"]), sentences=SENTENCES, labels=LABELS)
    out = run_python(code, env=child_env(TF_USE_LEGACY_KERAS="1"))
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))  # type: ignore[no-any-return]


def test_the_text_classification_tutorial_as_written(models, peer):
    handle = str(models["text"])
    hub_layer = hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=True)
    model = tf.keras.Sequential()
    model.add(hub_layer)
    model.add(tf.keras.layers.Dense(16, activation="relu"))
    model.add(tf.keras.layers.Dense(1))
    model.summary(print_fn=lambda *_args, **_kw: None)  # the tutorial prints it: built already
    assert model.inputs[0].dtype == "string" and tuple(model.inputs[0].shape) == (None,)
    model.layers[1].set_weights(dense_weights()[:2])
    model.layers[2].set_weights(dense_weights()[2:])
    before = model.predict(tf.constant(SENTENCES), verbose=0)
    np.testing.assert_allclose(before, peer["tutorial_before"], rtol=1e-5, atol=1e-5)

    model.compile(
        optimizer="adam",
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train_data = tf.data.Dataset.from_tensor_slices((SENTENCES, LABELS)).shuffle(4).batch(2)
    embeddings = hub_layer.resolved_object.embeddings.numpy().copy()
    history = model.fit(train_data, epochs=2, validation_data=train_data, verbose=0)
    assert len(history.history["loss"]) == 2 and "val_accuracy" in history.history
    # trainable=True: the SavedModel's own embeddings were fine-tuned.
    assert not np.allclose(hub_layer.resolved_object.embeddings.numpy(), embeddings)
    assert model.evaluate(train_data, verbose=0)[0] >= 0.0


@pytest.mark.parametrize("kind", ["str", "object"])
def test_sequential_without_input_on_numpy_strings_and_lists(models, peer, kind):
    handle = str(models["text"])
    model = tf.keras.Sequential(
        [
            hub.KerasLayer(handle),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(1),
        ]
    )
    assert model(tf.constant(SENTENCES)).shape == (4, 1)  # called on strings, never built before
    model.layers[1].set_weights(dense_weights()[:2])
    model.layers[2].set_weights(dense_weights()[2:])
    model.compile("adam", "mse")
    x = np.array(SENTENCES, dtype=kind)
    history = model.fit(x, np.array(LABELS, np.float32), epochs=2, verbose=0)
    # The hub layer is frozen, so training is deterministic: the same losses as tf_keras.
    np.testing.assert_allclose(history.history["loss"], peer[f"{kind}_loss"], rtol=1e-4)
    predicted = model.predict(SENTENCES, verbose=0)  # a plain Python list of str
    np.testing.assert_allclose(predicted, peer[f"{kind}_predict_list"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), predicted, rtol=1e-6)
    assert model.evaluate(x, np.array(LABELS, np.float32), verbose=0) == pytest.approx(
        float(np.mean((predicted[:, 0] - LABELS) ** 2)), rel=1e-4
    )


def test_numpy_text_is_only_rewritten_for_models_with_a_hub_layer(models):
    plain = tf.keras.Sequential([tf.keras.Input(shape=(), dtype="string")])
    with pytest.raises(ValueError, match="Unrecognized data type"):
        plain.predict(SENTENCES, verbose=0)  # Keras 3's own behaviour, untouched
    inner = tf.keras.Sequential([hub.KerasLayer(str(models["text"]))])  # a model in a model
    inputs = tf.keras.Input(shape=(), dtype="string")
    nested = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inner(inputs)))
    assert nested.predict(np.array(SENTENCES), verbose=0).shape == (4, 1)


def test_string_dtype_comes_from_the_model_and_config_keeps_the_input_shape(models, tmp_path):
    layer = hub.KerasLayer(str(models["text"]))
    assert layer.compute_dtype == "string"  # declared by the SavedModel's traced functions
    assert hub.KerasLayer(str(models["flag"])).compute_dtype == "float32"
    tutorial = hub.KerasLayer(str(models["text"]), input_shape=[], dtype=tf.string)
    assert tutorial.input_shape == (None,)
    config = tutorial.get_config()
    assert config["batch_input_shape"] == [None]
    assert hub.KerasLayer.from_config(config).input_shape == (None,)
    with pytest.raises(AttributeError):
        _ = layer.input_shape
    model = tf.keras.Sequential([tutorial, tf.keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    loaded = tf.keras.models.load_model(tmp_path / "m.keras", safe_mode=False)
    np.testing.assert_allclose(
        loaded.predict(SENTENCES, verbose=0), model.predict(SENTENCES, verbose=0), rtol=1e-6
    )


class TokenIds(tf.Module):
    """int32 token ids [batch] → float32 [batch, 4]."""

    def __init__(self) -> None:
        super().__init__()
        self.table = tf.Variable(tf.reshape(tf.range(40, dtype=tf.float32), [10, 4]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def __call__(self, ids):
        return tf.gather(self.table, ids)


def test_integer_inputs_without_input_are_not_cast_to_float(tmp_path):
    tf.saved_model.save(TokenIds(), str(tmp_path / "ids"))
    layer = hub.KerasLayer(str(tmp_path / "ids"))
    assert layer.compute_dtype == "int32"
    model = tf.keras.Sequential([layer, tf.keras.layers.Dense(1, kernel_initializer="ones")])
    np.testing.assert_allclose(model(np.array([0, 2], np.int32)), [[6.0], [38.0]])
    np.testing.assert_allclose(model.predict(np.array([1]), verbose=0), [[22.0]])
