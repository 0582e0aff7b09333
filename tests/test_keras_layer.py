"""hub.KerasLayer on Keras 3: a real keras.layers.Layer over a real SavedModel."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub


def test_seed_example_my_mul_model(models):
    layer = hub.KerasLayer(str(models["mul"]))
    np.testing.assert_allclose(layer([10.0, 20.0]), [20.0, 40.0])
    assert layer.trainable_weights == []
    assert [float(w.numpy()) for w in layer.weights] == [2.0]
    assert [float(x) for x in layer.losses] == []
    layer.trainable = True
    assert [float(w.numpy()) for w in layer.trainable_weights] == [2.0]
    np.testing.assert_allclose([float(x) for x in layer.losses], [0.004], rtol=1e-6)


def test_is_a_keras3_layer_in_sequential_functional_and_subclassed(models):
    assert isinstance(hub.KerasLayer(str(models["flag"])), keras.layers.Layer)
    x = np.array([[1.0, 2.0]], np.float32)
    seq = keras.Sequential([keras.Input(shape=(2,)), hub.KerasLayer(str(models["flag"]))])
    np.testing.assert_allclose(seq(x), [[8.0]])
    inp = keras.Input(shape=(2,))
    func = keras.Model(inp, keras.layers.Dense(1)(hub.KerasLayer(str(models["flag"]))(inp)))
    assert func(x).shape == (1, 1)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.hub = hub.KerasLayer(str(models["flag"]))

        def call(self, inputs):
            return self.hub(inputs) * 2

    np.testing.assert_allclose(Sub()(x), [[16.0]])


def test_weights_are_the_loaded_variables_not_copies(models):
    layer = hub.KerasLayer(str(models["flag"]), trainable=True)
    obj = layer.resolved_object
    assert len(layer.trainable_weights) == 1 and len(layer.non_trainable_weights) == 1
    layer.trainable_weights[0].assign([[5.0], [5.0]])
    np.testing.assert_allclose(obj.w.numpy(), [[5.0], [5.0]])
    obj.frozen.assign(0.0)
    np.testing.assert_allclose(layer.non_trainable_weights[0].numpy(), 0.0)


def test_training_reaches_the_model_only_when_trainable(models):
    x = tf.constant([[1.0, 1.0]])
    frozen = hub.KerasLayer(str(models["flag"]))
    np.testing.assert_allclose(frozen(x, training=True), [[6.0]])  # like a frozen BatchNorm
    tuned = hub.KerasLayer(str(models["flag"]), trainable=True)
    np.testing.assert_allclose(tuned(x, training=True), [[1006.0]])
    np.testing.assert_allclose(tuned(x, training=False), [[6.0]])
    np.testing.assert_allclose(tuned(x), [[6.0]])


def test_fit_trains_only_when_trainable_and_counts_regularization(models):
    x = np.ones((16, 1), np.float32)
    y = np.full((16, 1), 3.0, np.float32)
    for trainable in (False, True):
        layer = hub.KerasLayer(str(models["mul"]), trainable=trainable)
        model = keras.Sequential([keras.Input(shape=(1,)), layer])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        before = float(layer.resolved_object.v.numpy())
        loss = model.evaluate(x, y, verbose=0)
        # mse((1*2 - 3)^2) = 1, plus the 0.004 regularization loss only when trainable.
        np.testing.assert_allclose(loss, 1.004 if trainable else 1.0, rtol=1e-5)
        model.fit(x, y, epochs=3, verbose=0)
        after = float(layer.resolved_object.v.numpy())
        assert (after != before) is trainable


def test_signature_output_key_and_outputs_as_dict(models):
    a = np.ones((2, 3), np.float32)
    layer = hub.KerasLayer(
        str(models["dict"]), signature="combine", output_key="sum", arguments={"offset": 1.0}
    )
    np.testing.assert_allclose(layer({"a": a, "b": a}), np.full((2, 3), 3.0))
    as_dict = hub.KerasLayer(
        str(models["dict"]),
        signature="combine",
        signature_outputs_as_dict=True,
        arguments={"offset": 0.0},
    )
    out = as_dict({"a": a, "b": 2 * a})
    assert sorted(out) == ["prod", "sum"]
    np.testing.assert_allclose(out["prod"], 2 * a)


def test_dict_inputs_and_outputs_through_call(models):
    a = np.ones((1, 3), np.float32)
    layer = hub.KerasLayer(str(models["dict"]), output_key="prod")
    np.testing.assert_allclose(layer({"a": a, "b": 3 * a}), 3 * a)
    whole = hub.KerasLayer(str(models["dict"]))
    out = whole({"a": a, "b": a})
    np.testing.assert_allclose(out["sum"], 4 * a)


def test_string_inputs_in_a_functional_model(models):
    inp = keras.Input(shape=(), dtype="string")
    emb = hub.KerasLayer(str(models["text"]))(inp)
    assert emb.shape == (None, 8) and emb.dtype == "float32"
    model = keras.Model(inp, keras.layers.Dense(2)(emb))
    assert model.predict(tf.constant(["hello world", ""]), verbose=0).shape == (2, 2)


def test_output_shape_and_compute_output_shape(models):
    layer = hub.KerasLayer(str(models["text"]), output_shape=[8])
    assert layer.compute_output_shape((None,)) == (None, 8)
    out = layer(tf.constant(["a b c"]))
    assert out.shape == (1, 8)
    plain = hub.KerasLayer(str(models["flag"]))
    assert tuple(plain.compute_output_shape((4, 2))) == (4, 1)


def test_already_loaded_object_as_handle(models):
    obj = hub.load(str(models["mul"]))
    layer = hub.KerasLayer(obj)
    assert layer.resolved_object is obj
    np.testing.assert_allclose(layer(tf.constant([1.0])), [2.0])
    with pytest.raises(ValueError, match="mutually exclusive with setting tags"):
        hub.KerasLayer(obj, tags=["serve"])
    with pytest.raises(ValueError, match="mutually exclusive with setting load_options"):
        hub.KerasLayer(obj, load_options=tf.saved_model.LoadOptions())
    with pytest.raises(NotImplementedError, match="string `handle`"):
        layer.get_config()


def test_wrong_combinations_have_clear_errors(models, caplog):
    path = str(models["dict"])
    with pytest.raises(ValueError, match="either output_key or signature_outputs_as_dict"):
        hub.KerasLayer(path, signature="combine")
    with pytest.raises(ValueError, match="either output_key or signature_outputs_as_dict"):
        hub.KerasLayer(path, signature="combine", output_key="sum", signature_outputs_as_dict=True)
    with pytest.raises(ValueError, match="signature_outputs_as_dict is only valid"):
        hub.KerasLayer(path, signature_outputs_as_dict=True)
    with pytest.raises(ValueError, match=r"Unknown signature nope .*available signatures: \["):
        hub.KerasLayer(path, signature="nope", output_key="sum")
    sig = hub.KerasLayer(
        path, signature="combine", output_key="sum", arguments={"offset": 0.0}, trainable=True
    )
    a = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match="unsupported when calling a SavedModel signature"):
        sig({"a": a, "b": a})
    with pytest.raises(ValueError, match="does not contain the output key nope"):
        hub.KerasLayer(path, output_key="nope")({"a": a, "b": a})
    with pytest.raises(ValueError, match="forbidden if output type"):
        hub.KerasLayer(str(models["mul"]), output_key="x")(tf.constant([1.0]))
    caplog.set_level(logging.ERROR)
    obj = hub.load(str(models["mul"]))
    layer = hub.KerasLayer(obj.__call__, trainable=True)  # a bare function: no variables
    layer(tf.constant([1.0]))
    assert "zero trainable weights" in caplog.text


def test_config_round_trip_keeps_tags(models):
    layer = hub.KerasLayer(
        str(models["mul"]), trainable=True, tags=["serve"], output_shape=[2], name="mymul"
    )
    config = layer.get_config()
    assert config["handle"] == str(models["mul"])
    assert config["tags"] == ["serve"] and config["output_shape"] == [2]
    assert config["trainable"] is True
    clone = hub.KerasLayer.from_config(config)
    assert clone.name == "mymul" and clone._hub.options.tags == ["serve"]
    np.testing.assert_allclose(clone(tf.constant([[1.0, 2.0]])), [[2.0, 4.0]])
    with pytest.raises(ValueError, match="not JSON-serializable"):
        hub.KerasLayer(str(models["mul"]), arguments={"x": object()}).get_config()


def test_keras_file_round_trip_without_custom_objects(models, tmp_path):
    layer = hub.KerasLayer(str(models["flag"]), trainable=True)
    model = keras.Sequential([keras.Input(shape=(2,)), layer, keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 2)), np.zeros((4, 1)), verbose=0)
    tuned_w = layer.resolved_object.w.numpy()
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[0], hub.KerasLayer)
    np.testing.assert_allclose(loaded.layers[0].resolved_object.w.numpy(), tuned_w)
    x = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_model_export_with_the_layer(models, tmp_path):
    inp = keras.Input(shape=(), dtype="string")
    model = keras.Model(inp, keras.layers.Dense(1)(hub.KerasLayer(str(models["text"]))(inp)))
    model.export(str(tmp_path / "exported"))
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    sentences = tf.constant(["a b", "c"])
    np.testing.assert_allclose(
        reloaded.serve(sentences), model.predict(sentences, verbose=0), rtol=1e-5
    )


def test_tf1_hub_format_defaults_to_the_default_signature_and_output(models):
    layer = hub.KerasLayer(str(models["tf1"]))
    np.testing.assert_allclose(layer(np.array([[1.0, 1.0]], np.float32)), [[3.0]])
    assert "signature" not in layer.get_config()  # __call__ = default signature, "default"
    double = hub.KerasLayer(str(models["tf1"]), output_key="double")
    np.testing.assert_allclose(double(np.array([[1.0, 1.0]], np.float32)), [[6.0]])
    as_dict = hub.KerasLayer(str(models["tf1"]), signature_outputs_as_dict=True)
    assert sorted(as_dict(np.array([[1.0, 1.0]], np.float32))) == ["default", "double"]
    inp = keras.Input(shape=(2,))
    model = keras.Model(inp, hub.KerasLayer(str(models["tf1"]))(inp))
    assert model.output.shape == (None, 1)
    with pytest.raises(ValueError, match="unsupported when calling a SavedModel signature"):
        hub.KerasLayer(str(models["tf1"]), output_key="double", trainable=True)(
            np.ones((1, 2), np.float32)
        )
