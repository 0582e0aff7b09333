"""TF1 Hub modules in TF2: callable, fine-tunable in Keras 3, convertible to TF2 SavedModels."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import tf1_modules as mods

v1 = tf.compat.v1


def _export(spec, path):
    with tf.Graph().as_default():
        module = hub.Module(spec, tags=spec.get_tags()[0])
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            module.export(str(path), session)
    return str(path)


@pytest.fixture(scope="module")
def seed_module(tmp_path_factory):
    return _export(hub.create_module_spec(mods.seed_module_fn), tmp_path_factory.mktemp("s") / "m")


@pytest.fixture(scope="module")
def train_module(tmp_path_factory):
    spec = hub.create_module_spec(mods.train_variant_module_fn, mods.TRAIN_TAGS_AND_ARGS)
    return _export(spec, tmp_path_factory.mktemp("t") / "m")


def _graph_outputs(path, x):
    with tf.Graph().as_default():
        out = hub.Module(path)(x, as_dict=True)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            return session.run(out)


def test_load_is_callable_with_the_reusable_interface(seed_module):
    x = np.random.default_rng(1).normal(size=(2, 50)).astype(np.float32)
    expected = _graph_outputs(seed_module, x)
    obj = hub.load(seed_module)
    np.testing.assert_allclose(obj(x), expected["default"], rtol=1e-5)
    out = obj.signatures["default"](default=x)
    np.testing.assert_allclose(out["hidden_activations"], expected["hidden_activations"], rtol=1e-5)
    assert len(obj.variables) == 4 and len(obj.trainable_variables) == 4
    assert len(obj.regularization_losses) == 1 and float(obj.regularization_losses[0]()) > 0


def test_fine_tuning_a_tf1_module_in_keras3(train_module):
    layer = hub.KerasLayer(train_module, trainable=True)
    x = np.ones((8, 4), np.float32)
    frozen_out = hub.KerasLayer(train_module)(x, training=True)
    np.testing.assert_allclose(frozen_out, np.full((8, 4), 4.0))  # frozen: inference variant
    np.testing.assert_allclose(layer(x, training=False), np.full((8, 4), 4.0))
    trained = layer(x, training=True).numpy()
    np.testing.assert_allclose(np.unique(trained), [0.0, 8.0])  # {"train"}: dropout of 4s
    moving = next(v for v in layer.resolved_object.variables if "moving_mean" in v.name)
    np.testing.assert_allclose(moving.numpy(), np.full(4, 0.4), rtol=1e-6)  # UPDATE_OPS ran
    np.testing.assert_allclose(layer(x, training=False), np.full((8, 4), 3.6), rtol=1e-6)
    model = keras.Sequential([keras.Input(shape=(4,)), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    w = next(v for v in layer.resolved_object.variables if "w" in v.name.split("/")[-1])
    before = w.numpy().copy()
    model.fit(x, np.zeros((8, 1), np.float32), epochs=2, verbose=0)
    assert not np.allclose(w.numpy(), before)


def test_tf1_regularization_losses_count_in_keras(seed_module):
    layer = hub.KerasLayer(seed_module, trainable=True)
    assert len(layer.losses) == 1 and float(layer.losses[0]) > 0
    layer.trainable = False
    assert layer.losses == []


def test_convert_gives_identical_outputs(seed_module, train_module, tmp_path):
    x = np.random.default_rng(2).normal(size=(3, 50)).astype(np.float32)
    expected = _graph_outputs(seed_module, x)["default"]
    hub.convert(seed_module, str(tmp_path / "tf2"))
    converted = hub.load(str(tmp_path / "tf2"))
    assert not converted._is_hub_module_v1
    np.testing.assert_allclose(converted(x), expected, rtol=1e-5)
    np.testing.assert_allclose(
        converted.signatures["serving_default"](default=x)["default"], expected
    )
    assert len(converted.trainable_variables) == 4 and len(converted.regularization_losses) == 1
    hub.convert(train_module, str(tmp_path / "tf2_train"))
    train = hub.load(str(tmp_path / "tf2_train"))
    ones = np.ones((8, 4), np.float32)
    np.testing.assert_allclose(train(ones, training=False), np.full((8, 4), 4.0))
    assert np.count_nonzero(train(ones, training=True).numpy() == 0) > 0
    layer = hub.KerasLayer(str(tmp_path / "tf2"), trainable=True)
    assert len(layer.trainable_weights) == 4


def test_convert_command(seed_module, tmp_path, capsys):
    from tfhub import cli

    assert cli.main(["convert", seed_module, str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    assert (tmp_path / "out" / "saved_model.pb").is_file()
    assert not (tmp_path / "out" / "tfhub_module.pb").exists()
    assert cli.main(["convert", str(tmp_path / "out"), str(tmp_path / "again")]) == 5
    assert "not in the TF1 Hub format" in capsys.readouterr().err


def test_two_tf1_modules_with_same_table_names_keep_their_own_tables(tmp_path):
    """Every TF1 module loaded in TF2 is instantiated under the same scope; tables (process-wide
    resources there) must still be per module, or the second module reads the first's vocab."""
    paths = []
    for i, words in enumerate((["a", "b", "c"], ["c", "b", "a"])):
        vocab = tmp_path / f"vocab{i}.txt"
        vocab.write_text("\n".join(words) + "\n")
        spec = hub.create_module_spec(mods.make_vocab_module_fn(vocab))
        paths.append(_export(spec, tmp_path / f"m{i}"))
    first, second = (hub.load(p) for p in paths)
    tokens = tf.constant(["a", "c", "zzz"])
    ids = [obj.signatures["default"](tokens)["ids"].numpy().tolist() for obj in (first, second)]
    assert ids == [[0, 2, 3], [2, 0, 3]]
    # and in TF1 graph mode, two instances in one graph
    with tf.Graph().as_default():
        graph_tokens = tf.constant(["a", "c", "zzz"])
        outs = [hub.Module(p)(graph_tokens, as_dict=True)["ids"] for p in paths]
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            assert [o.tolist() for o in session.run(outs)] == [[0, 2, 3], [2, 0, 3]]
