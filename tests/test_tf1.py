"""The TF1 Hub format on TF 2.21: create, export, import, apply, fine-tune hub.Modules."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import tf1_modules as mods

v1 = tf.compat.v1
X50 = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32)


def _run(fetches, feed=None):
    with v1.Session() as session:
        session.run([v1.global_variables_initializer(), v1.tables_initializer()])
        return session.run(fetches, feed_dict=feed)


def _export_seed(path):
    spec = hub.create_module_spec(mods.seed_module_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        outputs = module(X50, as_dict=True)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            values = session.run(outputs)
            module.export(str(path), session)
    return values


def test_seed_example_create_apply_export_reimport(tmp_path):
    before = _export_seed(tmp_path / "m")
    assert sorted(before) == ["default", "hidden_activations"]
    assert before["default"].shape == (3, 100) and before["hidden_activations"].shape == (3, 200)
    listing = sorted(
        os.path.relpath(os.path.join(d, f), tmp_path / "m")
        for d, _, files in os.walk(tmp_path / "m")
        for f in files
    )
    assert listing == [
        "saved_model.pb",
        "tfhub_module.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    assert (tmp_path / "m" / "tfhub_module.pb").read_bytes() == b"\x08\x03"
    with tf.Graph().as_default():
        module = hub.Module(str(tmp_path / "m"))
        after = _run(module(X50, as_dict=True))
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-6)


def test_variables_are_shared_between_calls_and_scopes_are_fresh():
    spec = hub.create_module_spec(mods.seed_module_fn)
    with tf.Graph().as_default():
        first = hub.Module(spec)
        a, b = first(X50), first(X50)
        hub.Module(spec)
        with v1.variable_scope("outer"):
            hub.Module(spec, name="emb_mod")
        names = [v.name for v in v1.global_variables()]
        assert "module/layer1/kernel:0" in names and "module_1/layer1/kernel:0" in names
        assert "outer/emb_mod/layer1/kernel:0" in names
        assert len(names) == 12  # 4 per instance, none added by applying
        va, vb = _run([a, b])
        np.testing.assert_allclose(va, vb)
        assert sorted(first.variable_map) == [
            "layer1/bias",
            "layer1/kernel",
            "layer2/bias",
            "layer2/kernel",
        ]
        assert next(v.name for v in first.variables) == "module/layer1/bias:0"


def test_two_inputs_two_outputs_signature():
    spec = hub.create_module_spec(mods.fruit_module_fn)
    assert spec.get_signature_names() == ["default", "fruit_to_pet"]
    infos = spec.get_input_info_dict("fruit_to_pet")
    assert sorted(infos) == ["apples", "oranges"]
    assert (
        infos["apples"].get_shape().as_list() == [None, 2] and infos["apples"].dtype == tf.float32
    )
    with tf.Graph().as_default():
        m = hub.Module(spec)
        x1, x2 = np.ones((1, 2), np.float32), np.full((1, 2), 2.0, np.float32)
        out = m(dict(apples=x1, oranges=x2), signature="fruit_to_pet", as_dict=True)
        values = _run(out)
        np.testing.assert_allclose(values["cats"], [[9.0, 9.0]])
        np.testing.assert_allclose(values["dogs"], [[-1.0, -1.0]])
        with pytest.raises(TypeError, match="Signature expects multiple inputs"):
            m(x1, signature="fruit_to_pet")
        with pytest.raises(TypeError, match=r"missing \['oranges'\], extra given \['pears'\]"):
            m({"apples": x1, "pears": x2}, signature="fruit_to_pet")
        with pytest.raises(TypeError, match="no output named 'default'"):
            m({"apples": x1, "oranges": x2}, signature="fruit_to_pet")
        with pytest.raises(ValueError, match="Signature 'nope' is missing"):
            m(x1, signature="nope")


def test_creation_errors():
    def no_signature():
        v1.placeholder(tf.float32, [None])

    with pytest.raises(ValueError, match="No signatures present"):
        hub.create_module_spec(no_signature)

    def odd_collection():
        x = v1.placeholder(tf.float32, [None])
        v1.add_to_collection("my_stuff", x)
        hub.add_signature(inputs=x, outputs=x)

    with pytest.raises(ValueError, match=r"Unsupported collections in graph: \['my_stuff'\]"):
        hub.create_module_spec(odd_collection)
    spec = hub.create_module_spec(odd_collection, drop_collections=["my_stuff"])
    assert spec.get_signature_names() == ["default"]
    with pytest.raises(ValueError, match="used repeatedly"):
        hub.create_module_spec(mods.seed_module_fn, [({"a"}, {}), ({"a"}, {})])

    def bad_key():
        x = v1.placeholder(tf.float32, [None])
        hub.attach_message("1bad key", hub.ImageModuleInfo())
        hub.add_signature(inputs=x, outputs=x)

    with pytest.raises(ValueError, match="malformed key '1bad key'"):
        hub.create_module_spec(bad_key)
    with pytest.raises(RuntimeError, match="inside the module_fn"):
        hub.add_signature(inputs=tf.constant(1.0), outputs=tf.constant(1.0))


def test_spec_export_needs_a_checkpoint_and_reads_it(tmp_path):
    spec = hub.create_module_spec(mods.fruit_module_fn)
    with pytest.raises(ValueError, match="Missing mandatory `checkpoint_path`"):
        spec.export(str(tmp_path / "x"))
    with tf.Graph().as_default():
        scale = v1.get_variable("prefix/scale", initializer=5.0)
        with v1.Session() as session:
            session.run(scale.initializer)
            ckpt = v1.train.Saver([scale]).save(session, str(tmp_path / "ckpt" / "model"))
    spec.export(
        str(tmp_path / "m"), checkpoint_path=ckpt, name_transform_fn=lambda n: "prefix/" + n
    )
    with tf.Graph().as_default():
        out = hub.Module(str(tmp_path / "m"))(np.ones((1, 2), np.float32))
        np.testing.assert_allclose(_run(out), [[5.0, 5.0]])


def test_module_in_eager_mode_is_a_clear_runtime_error():
    spec = hub.create_module_spec(mods.seed_module_fn)
    with pytest.raises(RuntimeError, match=r"eager execution is enabled.*hub.load"):
        hub.Module(spec)


def test_module_must_be_applied_in_its_graph():
    spec = hub.create_module_spec(mods.seed_module_fn)
    with tf.Graph().as_default():
        m = hub.Module(spec)
    with tf.Graph().as_default(), pytest.raises(RuntimeError, match="graph it was instantiated"):
        m(X50)
    with tf.Graph().as_default(), pytest.raises(ValueError, match="No such graph variant"):
        hub.Module(spec, tags={"train"})


def test_assets_and_tables_survive_moving_the_module(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat\ndog\nmouse\n")
    spec = hub.create_module_spec(mods.make_vocab_module_fn(vocab))
    with tf.Graph().as_default():
        m = hub.Module(spec)
        out = m(["dog", "lizard"], as_dict=True)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            values = session.run(out)
            m.export(str(tmp_path / "m"), session)
    np.testing.assert_array_equal(values["ids"], [1, 3])
    assert (tmp_path / "m" / "assets" / "vocab.txt").read_text() == "cat\ndog\nmouse\n"
    vocab.unlink()
    os.rename(tmp_path / "m", tmp_path / "moved")
    with tf.Graph().as_default():
        out = hub.Module(str(tmp_path / "moved"))(["mouse", "cat"], as_dict=True)
        assert v1.get_collection(v1.GraphKeys.TABLE_INITIALIZERS)
        moved = _run(out)
    np.testing.assert_array_equal(moved["ids"], [2, 0])
    np.testing.assert_allclose(moved["default"], [[4.0, 5.0], [0.0, 1.0]])


def test_train_variant_regularization_and_update_ops():
    spec = hub.create_module_spec(mods.train_variant_module_fn, mods.TRAIN_TAGS_AND_ARGS)
    assert spec.get_tags() == [frozenset(), frozenset({"train"})]
    x = np.ones((8, 4), np.float32)
    with tf.Graph().as_default():
        infer = hub.Module(spec)
        assert v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES) == []
        y_infer = infer(x)
        train = hub.Module(spec, trainable=True, tags={"train"}, name="train")
        y_train = train(x)
        assert [v.name for v in v1.trainable_variables()] == ["train/w:0", "train/moving_mean:0"][
            :1
        ]
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        assert len(updates) == 1
        a, b = _run([y_infer, y_train])
        np.testing.assert_allclose(a, np.full((8, 4), 4.0))
        assert np.count_nonzero(b == 0) > 0  # dropout only in the train variant
    spec = hub.create_module_spec(mods.seed_module_fn)
    with tf.Graph().as_default():
        hub.Module(spec)
        assert v1.losses.get_regularization_losses() == []
        hub.Module(spec, trainable=True)
        losses = v1.losses.get_regularization_losses()
        assert len(losses) == 1
        assert _run(losses[0]) > 0


def test_sparse_and_ragged_inputs():
    spec = hub.create_module_spec(mods.sparse_and_ragged_module_fn)
    assert spec.get_input_info_dict("sparse")["default"].is_sparse
    assert spec.get_input_info_dict("ragged")["default"].is_composite
    with tf.Graph().as_default():
        m = hub.Module(spec)
        sparse = tf.SparseTensor([[0, 0], [0, 2], [1, 1]], [1.0, 2.0, 5.0], [2, 3])
        ragged = tf.ragged.constant([[1.0, 2.0], [], [4.0]])
        a = m(sparse, signature="sparse")
        b = m(ragged, signature="ragged")
        va, vb = _run([a, b])
    np.testing.assert_allclose(va, [3.0, 5.0])
    np.testing.assert_allclose(vb, [3.0, 0.0, 4.0])


def test_attachments_and_image_helpers():
    spec = hub.create_module_spec(mods.image_module_fn)
    info = spec.get_attached_message("image_module_info", hub.ImageModuleInfo)
    assert (info.default_image_size.height, info.default_image_size.width) == (7, 9)
    assert spec.get_attached_message("nothing", hub.ImageModuleInfo) is None
    assert spec.attachment_keys() == ["image_module_info"]
    with pytest.raises(KeyError, match="No attached message for key 'nothing'"):
        spec.get_attached_message("nothing", hub.ImageModuleInfo, required=True)
    assert hub.get_expected_image_size(spec) == [7, 9]
    assert hub.get_num_image_channels(spec) == 3
    plain = hub.create_module_spec(mods.fruit_module_fn)
    assert plain.get_attached_message("image_module_info", hub.ImageModuleInfo) is None
    assert "hub_module_attachments" not in plain.meta_graph(None).collection_def  # not mutated
    with pytest.raises(ValueError, match="missing input 'images'"):
        hub.get_expected_image_size(plain)


def test_eval_function_for_module(tmp_path):
    _export_seed(tmp_path / "m")
    with hub.eval_function_for_module(str(tmp_path / "m")) as f:
        out = f(X50, as_dict=True)
        assert out["default"].shape == (3, 100)
        np.testing.assert_allclose(f(X50), out["default"])
    spec = hub.create_module_spec(mods.sparse_and_ragged_module_fn)
    with hub.eval_function_for_module(spec) as f:
        np.testing.assert_allclose(f([[1.0, 2.0], [3.0]], signature="ragged"), [3.0, 3.0])


def test_module_spec_from_tf1_saved_model(tmp_path):
    path = tmp_path / "saved_model"
    with tf.Graph().as_default() as graph:
        x = v1.placeholder(tf.float32, [None, 2])
        w = v1.get_variable("w", initializer=[[2.0], [3.0]], use_resource=True)
        v1.train.get_or_create_global_step()
        y = tf.matmul(x, w)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(path))
            info = v1.saved_model.utils.build_tensor_info
            sig = v1.saved_model.signature_def_utils.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                session, ["serve"], signature_def_map={"default": sig}
            )
            builder.save()
            del info
    spec = hub.create_module_spec_from_saved_model(str(path))
    spec.export(str(tmp_path / "m"), checkpoint_path=str(path / "variables" / "variables"))
    with tf.Graph().as_default():
        out = hub.Module(str(tmp_path / "m"), tags={"serve"})({"x": [[1.0, 1.0]]}, as_dict=True)
        np.testing.assert_allclose(_run(out)["y"], [[5.0]])


def test_unknown_required_features_are_refused(tmp_path):
    _export_seed(tmp_path / "m")
    from tfhub.protos import ModuleDef

    (tmp_path / "m" / "tfhub_module.pb").write_bytes(
        ModuleDef(format=3, required_features=["foo-test-missing"]).SerializeToString()
    )
    with pytest.raises(ValueError, match="foo-test-missing"):
        hub.load_module_spec(str(tmp_path / "m"))
    with pytest.raises(ValueError, match="not in the TF1 Hub format"):
        hub.load_module_spec(str(tmp_path / "m" / "variables"))
    (tmp_path / "m" / "tfhub_module.pb").write_bytes(b"\x08\x03")
    (tmp_path / "m" / "saved_model.pb").write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(hub.NotAModelError, match=r"saved_model.pb \(from .*\) is corrupt"):
        hub.load_module_spec(str(tmp_path / "m"))


def test_latest_module_exporter(tmp_path):
    spec = hub.create_module_spec(mods.fruit_module_fn)

    def graph_fn():
        module = hub.Module(spec)
        hub.register_module_for_export(module, "fruit")
        with pytest.raises(ValueError, match="already a module registered"):
            hub.register_module_for_export(module, "fruit")

    with tf.Graph().as_default():
        graph_fn()
        scale = next(v for v in v1.global_variables() if v.name == "module/scale:0")
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(scale.assign(7.0))
            v1.train.Saver().save(session, str(tmp_path / "train" / "model"))
    exporter = hub.LatestModuleExporter("fruit", graph_fn, exports_to_keep=2)
    dirs = [exporter.export(str(tmp_path / "exports"), checkpoint_dir=str(tmp_path / "train"))]
    for _ in range(2):
        dirs.append(exporter.export(str(tmp_path / "exports"), checkpoint_dir=tmp_path / "train"))
    assert sorted(os.listdir(tmp_path / "exports")) == sorted(os.path.basename(d) for d in dirs[1:])
    with tf.Graph().as_default():
        out = hub.Module(os.path.join(dirs[-1], "fruit"))(np.ones((1, 2), np.float32))
        np.testing.assert_allclose(_run(out), [[7.0, 7.0]])
    assert (
        hub.LatestModuleExporter("none", lambda: None).export(
            str(tmp_path / "e2"), checkpoint_dir=str(tmp_path / "train")
        )
        is None
    )
    with pytest.raises(ValueError, match="positive"):
        hub.LatestModuleExporter("x", graph_fn, exports_to_keep=0)


def test_latest_module_exporter_as_keras_callback(tmp_path):
    import keras

    spec = hub.create_module_spec(mods.fruit_module_fn)

    def graph_fn():
        hub.register_module_for_export(hub.Module(spec), "fruit")

    with tf.Graph().as_default():
        graph_fn()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver().save(session, str(tmp_path / "train" / "model"))
    exporter = hub.LatestModuleExporter("fruit", graph_fn, exports_to_keep=None)
    callback = exporter.keras_callback(str(tmp_path / "exports"), str(tmp_path / "train"))
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[callback])
    exports = sorted(os.listdir(tmp_path / "exports"))
    assert len(exports) == 2
    assert os.path.isfile(tmp_path / "exports" / exports[-1] / "fruit" / "tfhub_module.pb")


def test_an_empty_collection_is_not_an_unsupported_one():
    """Asking a graph for a collection reference creates the key even if nothing is added;
    such an empty collection holds nothing to export and must not be refused."""

    def module_fn():
        x = tf.compat.v1.placeholder(tf.float32, [None])
        tf.compat.v1.get_collection_ref(tf.compat.v1.GraphKeys.LOCAL_VARIABLES)
        hub.add_signature(inputs=x, outputs=x * 2.0)

    spec = hub.create_module_spec(module_fn)
    assert spec.get_signature_names() == ["default"]
