"""export_keras: Keras 3 models and layers → Reusable SavedModels, checked by round trip."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import run_python
from tfhub.exporters.keras_model import export_keras


def _checkpoint_keys(path):
    names = [n for n, _ in tf.train.list_variables(str(path / "variables" / "variables"))]
    return [n for n in names if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    """A trained big model (Adam) and the "features" piece cut out of it, exported."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,), name="x")
    h = keras.layers.Dense(
        8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01), name="hidden"
    )(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Dropout(0.5, name="drop")(h)
    features = keras.layers.Dense(
        4, kernel_regularizer=keras.regularizers.L1(0.02), name="features"
    )(h)
    big = keras.Model(inputs, keras.layers.Dense(1, name="head")(features))
    big.compile(keras.optimizers.Adam(0.01), "mse")
    rng = np.random.default_rng(0)
    big.fit(rng.random((32, 6)), rng.random((32, 1)), epochs=2, verbose=0)
    assert big.optimizer.variables  # there is optimizer state that must not be exported
    model = keras.Model(big.input, big.get_layer("features").output)
    path = tmp_path_factory.mktemp("export") / "piece"
    assert export_keras(model, path) == str(path)
    return model, path


X = np.random.default_rng(1).random((5, 6)).astype(np.float32)


def test_piece_round_trip_outputs_and_interface(piece):
    model, path = piece
    obj = hub.load(str(path))
    np.testing.assert_allclose(obj(X, training=False), model(X, training=False), rtol=1e-6)
    serve = obj.signatures["serving_default"]
    np.testing.assert_allclose(serve(x=tf.constant(X))["default"], model(X), rtol=1e-6)
    assert [v.shape for v in obj.trainable_variables] == [
        v.shape for v in model.trainable_variables
    ]
    assert len(obj.variables) == len(model.variables)  # weights, moving stats, dropout seed
    for saved, original in zip(obj.variables, model.variables, strict=True):
        np.testing.assert_array_equal(saved.numpy(), np.asarray(original.numpy()))


def test_no_optimizer_state_is_saved(piece):
    model, path = piece
    keys = _checkpoint_keys(path)
    assert len(keys) == len(model.variables)
    assert all(k.startswith("variables/") for k in keys), keys
    assert not any("optimizer" in k or "iteration" in k for k in keys)
    assert not hasattr(hub.load(str(path)), "optimizer")


def test_dropout_only_in_training_mode(piece):
    model, path = piece
    layer = hub.KerasLayer(str(path), trainable=True)
    np.testing.assert_allclose(layer(X, training=False), model(X, training=False), rtol=1e-6)
    np.testing.assert_allclose(layer(X, training=False), layer(X, training=False))
    assert not np.allclose(layer(X, training=True), layer(X, training=False))
    # (Training mode also moves the batch-norm statistics, as it does in Keras.)
    obj = hub.load(str(path))
    first, second = obj(X, training=True).numpy(), obj(X, training=True).numpy()
    assert not np.allclose(first, second)  # a new dropout mask on every call
    np.testing.assert_allclose(obj(X, training=False), obj(X, training=False))


def test_regularization_losses_equal_the_models_and_follow_the_weights(piece):
    model, path = piece
    layer = hub.KerasLayer(str(path), trainable=True)
    obj = layer.resolved_object
    assert len(obj.regularization_losses) == 2  # the L2 of "hidden", the L1 of "features"
    expected = sum(float(loss) for loss in model.losses)
    assert expected > 0
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-6)
    # Each loss reads its variable: after a change of the weights it follows them.
    kernel = obj.trainable_variables[0]
    kernel.assign(kernel * 2.0)
    terms = sorted(float(f()) for f in obj.regularization_losses)
    hidden_l2 = 0.01 * float(tf.reduce_sum(tf.square(kernel)))
    assert any(np.isclose(t, hidden_l2, rtol=1e-5) for t in terms), (terms, hidden_l2)
    frozen = hub.KerasLayer(str(path))
    assert frozen.losses == []


def test_fine_tuning_the_piece_in_a_new_model(piece):
    _, path = piece
    keras.utils.set_random_seed(2)
    layer = hub.KerasLayer(str(path), trainable=True)
    model = keras.Sequential([keras.Input((6,)), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    rng = np.random.default_rng(3)
    x = rng.random((64, 6)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    before = [v.numpy().copy() for v in layer.resolved_object.trainable_variables]
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = layer.resolved_object.trainable_variables
    assert all(not np.allclose(b, a.numpy()) for b, a in zip(before, after, strict=True))


def test_batch_norm_step_through_the_layer_matches_keras(tmp_path):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(0.1), name="d")(inputs)
    core = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.5, name="bn")(h))
    export_keras(core, tmp_path / "core")
    x = np.random.default_rng(5).normal(2.0, 1.0, (16, 3)).astype(np.float32)
    y = np.ones((16, 1), np.float32)

    def one_step(piece_layer):
        model = keras.Sequential(
            [keras.Input((3,)), piece_layer, keras.layers.Dense(1, kernel_initializer="ones")]
        )
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    layer = hub.KerasLayer(str(tmp_path / "core"), trainable=True)
    obj = layer.resolved_object
    moving_mean = next(v for v in obj.variables if "moving_mean" in v.name)
    np.testing.assert_array_equal(moving_mean.numpy(), 0.0)
    one_step(layer)
    one_step(core)  # the original, from the same starting point
    assert np.abs(moving_mean.numpy()).max() > 0.1  # updated from the batch statistics
    # Same forward pass (batch statistics), same gradients (incl. the L2 term), same updates.
    for saved, original in zip(obj.variables, core.variables, strict=True):
        np.testing.assert_allclose(saved.numpy(), original.numpy(), rtol=1e-5, atol=1e-6)
    # Inference uses the moving statistics, as in Keras.
    np.testing.assert_allclose(layer(x, training=False), core(x, training=False), rtol=1e-5)


def test_sequential_and_subclassed_layer(tmp_path, caplog):
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activity_regularizer="l2")])
    export_keras(seq, tmp_path / "seq")
    x = np.ones((2, 3), np.float32)
    obj = hub.load(str(tmp_path / "seq"))
    np.testing.assert_allclose(obj(x, training=False), seq(x), rtol=1e-6)
    # Activity regularizers depend on the inputs: not exported, and the user is told.
    assert list(obj.regularization_losses) == []
    assert "activity regularizers of dense" in caplog.text

    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1],), initializer="ones", regularizer="l2", name="w"
            )

        def call(self, inputs):
            return inputs * self.w

    layer = Scale()
    layer(x)  # built eagerly: its inputs are unknown
    with pytest.raises(hub.UsageError, match="input_signature"):
        export_keras(layer, tmp_path / "scale")
    export_keras(layer, tmp_path / "scale", input_signature=tf.TensorSpec([None, 3], tf.float32))
    obj = hub.load(str(tmp_path / "scale"))
    np.testing.assert_allclose(obj(x * 3.0, training=False), x * 3.0)
    assert len(obj.regularization_losses) == 1
    np.testing.assert_allclose(obj.regularization_losses[0](), 0.01 * 3, rtol=1e-6)


def test_dict_inputs_and_dict_outputs(tmp_path):
    inputs = {"a": keras.Input((3,), name="a"), "b": keras.Input((2,), name="b")}
    joined = keras.layers.Concatenate()([inputs["a"], inputs["b"]])
    model = keras.Model(
        inputs, {"sum": keras.layers.Dense(1)(joined), "code": keras.layers.Dense(2)(joined)}
    )
    export_keras(model, tmp_path / "dict")
    obj = hub.load(str(tmp_path / "dict"))
    feed = {"a": np.ones((4, 3), np.float32), "b": np.zeros((4, 2), np.float32)}
    out, want = obj(feed, training=False), model(feed)
    assert set(out) == {"sum", "code"}
    for key in out:
        np.testing.assert_allclose(out[key], want[key], rtol=1e-6)
    serve = obj.signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"a", "b"}
    assert set(serve.structured_outputs) == {"sum", "code"}
    layer = hub.KerasLayer(str(tmp_path / "dict"), output_key="sum", signature="serving_default")
    np.testing.assert_allclose(layer(feed), want["sum"], rtol=1e-6)


def test_string_lookup_tables_and_extra_signatures(tmp_path):
    words = keras.Input((None,), dtype="string", name="words")
    ids = keras.layers.StringLookup(vocabulary=["good", "bad", "fine"])(words)
    vectors = keras.layers.Embedding(4, 3, name="embed")(ids)
    model = keras.Model(words, keras.ops.mean(vectors, axis=1))
    double = tf.function(
        lambda w: {"twice": 2.0 * model(w)},
        input_signature=[tf.TensorSpec([None, None], tf.string)],
    )
    export_keras(model, tmp_path / "text", signatures={"double": double})
    obj = hub.load(str(tmp_path / "text"))
    batch = tf.constant([["good", "zzz"], ["bad", "fine"]])
    np.testing.assert_allclose(obj(batch, training=False), model(batch), rtol=1e-6)
    np.testing.assert_allclose(obj.signatures["double"](w=batch)["twice"], 2.0 * model(batch))


def test_bad_arguments_are_refused_clearly(tmp_path, piece):
    model, path = piece
    with pytest.raises(hub.UsageError, match="already exists and is not an empty directory"):
        export_keras(model, path)
    with pytest.raises(hub.UsageError, match="Keras 3 model or layer"):
        export_keras(tf.Module(), tmp_path / "m")
    with pytest.raises(hub.UsageError, match="local directory"):
        export_keras(model, "gs://bucket/model")
    with pytest.raises(hub.UsageError, match="without an input_signature"):
        export_keras(model, tmp_path / "m", signatures={"s": tf.function(lambda x: x)})
    assert not (tmp_path / "m").exists()
    (tmp_path / "empty").mkdir()  # an empty directory is fine, and nothing is left beside it
    export_keras(model, tmp_path / "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_loads_with_the_real_tensorflow_hub(piece):
    model, path = piece
    out = run_python(
        f"""
        import json
        import numpy as np
        import tensorflow_hub as th
        x = np.array({X.tolist()!r}, np.float32)
        obj = th.load({str(path)!r})
        layer = th.KerasLayer({str(path)!r}, trainable=True)
        print(json.dumps({{
            "out": obj(x, training=False).numpy().tolist(),
            "trainable": len(layer.trainable_weights),
            "losses": float(sum(layer.losses)),
        }}))
        """,
        env={"TF_USE_LEGACY_KERAS": "1"},
    )
    result = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(result["out"], model(X, training=False), rtol=1e-5)
    assert result["trainable"] == len(model.trainable_variables)
    np.testing.assert_allclose(result["losses"], sum(float(v) for v in model.losses), rtol=1e-5)
