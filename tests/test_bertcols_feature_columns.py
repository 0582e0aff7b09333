"""The 0.15 feature-column helpers, used as a 0.15 user would: graph mode, a Session and
tf.compat.v1.feature_column.input_layer, with real modules built here.

Each column's output is compared with the module applied directly, and with tensorflow_hub
0.15 itself (in a subprocess: .venv/tfhub015, as in test_tf1_compat.py).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO, models, run_python
from tfhub import cli

v1 = tf.compat.v1
TFHUB015 = REPO / ".venv" / "tfhub015"
WORDS = {"cat": [1.0, 0.0, 2.0], "dog": [0.0, 3.0, 1.0], "mat": [4.0, 1.0, 0.0]}
TEXTS = ["cat dog", "mat", "dog dog cat", "zebra"]


@pytest.fixture(scope="module")
def text_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tfhub export-text-embedding --format tf1`: sentences → [batch, 3]."""
    root = tmp_path_factory.mktemp("fc")
    vectors = root / "vectors.txt"
    vectors.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in WORDS.items()))
    out = root / "text_tf1"
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["export-text-embedding", str(vectors), str(out), "--format", "tf1"])
    assert code == 0
    return out


def _tokens_module_fn() -> None:
    """A hand-made token embedding (1-D tokens → [tokens, 2]) with a variable."""
    tokens = v1.placeholder(tf.string, [None])
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(["a", "b", "c", "<unk>"], [0, 1, 2, 3], tf.string),
        3,
    )
    weights = v1.get_variable(
        "weights", initializer=[[1.0, 2.0], [3.0, 5.0], [-1.0, 4.0], [0.5, 0.5]]
    )
    hub.add_signature(inputs=tokens, outputs=tf.gather(weights, table.lookup(tokens)))


def _image_module_fn() -> None:
    images = v1.placeholder(tf.float32, [None, None, None, 3], name="images")
    weights = v1.get_variable("w", initializer=[[1.0, 0.0, 2.0, 1.0]] * 3)
    hub.add_signature(
        inputs={"images": images}, outputs=tf.matmul(tf.reduce_mean(images, [1, 2]), weights)
    )
    info = hub.ImageModuleInfo()
    info.default_image_size.height = 7
    info.default_image_size.width = 9
    hub.attach_image_module_info(info)


def _run(fetches):
    with v1.Session() as session:
        session.run([v1.global_variables_initializer(), v1.tables_initializer()])
        return session.run(fetches)


def _direct(spec, inputs):
    with tf.Graph().as_default():
        return _run(hub.Module(spec)(inputs))


def test_text_embedding_column_in_input_layer(text_module):
    column = hub.text_embedding_column("comment", str(text_module))
    assert column.name == "comment_hub_module_embedding"
    assert column.variable_shape == tf.TensorShape([3])
    spec = v1.feature_column.make_parse_example_spec([column])
    assert spec == {"comment": tf.io.FixedLenFeature([1], tf.string)}
    # Parsed from tf.train.Example protos, as an Estimator input_fn would.
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"comment": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t]))}
            )
        ).SerializeToString()
        for t in (s.encode() for s in TEXTS)
    ]
    with tf.Graph().as_default():
        features = tf.io.parse_example(tf.constant(examples), spec)
        net = v1.feature_column.input_layer(features, [column])
        from_list = v1.feature_column.input_layer({"comment": tf.constant(TEXTS)}, [column])
        assert net.shape.as_list() == [len(TEXTS), 3]
        assert not v1.trainable_variables()  # trainable=False by default
        got, got_list = _run([net, from_list])
    expected = _direct(hub.load_module_spec(str(text_module)), TEXTS)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got_list, expected, rtol=1e-6)
    # The module's own combination (sqrtn) of the word vectors; unknown words in OOV.
    np.testing.assert_allclose(
        got[0], (np.array(WORDS["cat"]) + WORDS["dog"]) / np.sqrt(2), rtol=1e-6
    )
    np.testing.assert_allclose(got[1], WORDS["mat"], rtol=1e-6)


def test_text_embedding_column_trainable_fine_tunes_the_module(text_module):
    column = hub.text_embedding_column("comment", str(text_module), trainable=True)
    with tf.Graph().as_default():
        net = v1.feature_column.input_layer({"comment": tf.constant(["cat"])}, [column])
        trainable = v1.trainable_variables()
        assert trainable, "trainable=True must put the module's weights in TRAINABLE_VARIABLES"
        step = v1.train.GradientDescentOptimizer(0.5).minimize(tf.reduce_sum(net))
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            before = session.run(net)
            session.run(step)
            after = session.run(net)
    np.testing.assert_allclose(before[0], WORDS["cat"], rtol=1e-6)
    assert not np.allclose(before, after)
    # input_layer(trainable=False) freezes even a trainable column.
    with tf.Graph().as_default():
        v1.feature_column.input_layer({"comment": tf.constant(["cat"])}, [column], trainable=False)
        assert not v1.trainable_variables()


def test_text_embedding_column_checks_the_module(tmp_path):
    tokens = hub.create_module_spec(_tokens_module_fn)  # output [None, 2], input [None]: ok
    hub.text_embedding_column("t", tokens)
    image = hub.create_module_spec(_image_module_fn)
    with pytest.raises(ValueError, match="Module is not a text-embedding") as info:
        hub.text_embedding_column("t", image)
    assert isinstance(info.value, hub.HubError)
    with pytest.raises(ValueError, match="combiner must be 'mean', 'sqrtn' or 'sum': 'max'"):
        hub.sparse_text_embedding_column("t", tokens, "max", None)
    with pytest.raises(ValueError, match="not usable as image embedding"):
        hub.image_embedding_column("img", tokens)
    with pytest.raises(FileNotFoundError):
        hub.text_embedding_column("t", str(tmp_path / "missing"))


@pytest.mark.parametrize("combiner", ["mean", "sqrtn", "sum"])
def test_sparse_text_embedding_column(combiner):
    spec = hub.create_module_spec(_tokens_module_fn)
    column = hub.sparse_text_embedding_column("tokens", spec, combiner, default_value="<unk>")
    assert v1.feature_column.make_parse_example_spec([column]) == {
        "tokens": tf.io.VarLenFeature(tf.string)
    }
    rows = [["a", "b"], [], ["c", "c", "zzz"]]
    table = {"a": [1.0, 2.0], "b": [3.0, 5.0], "c": [-1.0, 4.0], "<unk>": [0.5, 0.5]}
    with tf.Graph().as_default():
        sparse = tf.SparseTensor(
            indices=[[0, 0], [0, 1], [2, 0], [2, 1], [2, 2]],
            values=["a", "b", "c", "c", "zzz"],
            dense_shape=[3, 3],
        )
        got = _run(v1.feature_column.input_layer({"tokens": sparse}, [column]))
    expected = []
    for row in rows:
        vectors = np.array([table.get(t, table["<unk>"]) for t in row or ["<unk>"]])
        total = vectors.sum(0)
        expected.append(
            {"sum": total, "mean": total / len(vectors), "sqrtn": total / np.sqrt(len(vectors))}[
                combiner
            ]
        )
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_image_embedding_column(tmp_path):
    spec = hub.create_module_spec(_image_module_fn)
    column = hub.image_embedding_column("img", spec)
    assert column.variable_shape == tf.TensorShape([4])
    # The size comes from the module's ImageModuleInfo, or from image_size.
    assert v1.feature_column.make_parse_example_spec([column]) == {
        "img": tf.io.FixedLenFeature([7, 9, 3], tf.float32)
    }
    resized = hub.image_embedding_column("img", spec, image_size=[5, 6])
    assert resized.image_size == (5, 6)
    assert resized.parse_example_spec["img"].shape == [5, 6, 3]
    images = np.random.default_rng(0).random((2, 7, 9, 3)).astype(np.float32)
    with tf.Graph().as_default():
        net = v1.feature_column.input_layer({"img": tf.constant(images)}, [column])
        assert not v1.trainable_variables()  # image columns never fine-tune
        got = _run(net)
    np.testing.assert_allclose(got, _direct(spec, {"images": images}), rtol=1e-5)
    np.testing.assert_allclose(
        got, images.mean((1, 2)) @ np.array([[1.0, 0.0, 2.0, 1.0]] * 3), rtol=1e-5
    )
    # A handle works as well as a spec, and the handle makes the column serializable.
    with tf.Graph().as_default():
        m = hub.Module(spec)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            m.export(str(tmp_path / "image"), session)
    by_path = hub.image_embedding_column("img", str(tmp_path / "image"))
    config = by_path.get_config()
    assert config == {"key": "img", "module_spec": str(tmp_path / "image"), "image_size": None}
    assert type(by_path).from_config(config) == by_path
    with pytest.raises(NotImplementedError, match="string handle"):
        column.get_config()


def test_several_columns_in_one_input_layer(text_module):
    image = hub.create_module_spec(_image_module_fn)
    columns = [
        hub.text_embedding_column("comment", str(text_module)),
        hub.image_embedding_column("img", image),
    ]
    images = np.ones((4, 7, 9, 3), np.float32)
    with tf.Graph().as_default():
        features = {"comment": tf.constant(TEXTS), "img": tf.constant(images)}
        got = _run(v1.feature_column.input_layer(features, columns))
    assert got.shape == (4, 7)
    # input_layer orders columns by name: comment_... before img_...
    np.testing.assert_allclose(got[:, :3], _direct(str(text_module), TEXTS), rtol=1e-6)
    np.testing.assert_allclose(got[:, 3:], [[3.0, 0.0, 6.0, 3.0]] * 4, rtol=1e-6)


def test_text_embedding_column_v2_with_a_saved_model(tmp_path):
    path = models.save_text_embedding(tmp_path / "text")
    column = hub.text_embedding_column_v2("comment", str(path))
    assert column.variable_shape == tf.TensorShape([8])  # traced in a scratch graph
    assert v1.feature_column.make_parse_example_spec([column]) == {
        "comment": tf.io.FixedLenFeature([1], tf.string)
    }
    expected = hub.load(str(path))(tf.constant(TEXTS)).numpy()
    with tf.Graph().as_default():
        net = v1.feature_column.input_layer(
            {"comment": tf.constant([[t] for t in TEXTS])}, [column]
        )
        assert not v1.trainable_variables()
        got = _run(net)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    trainable = hub.text_embedding_column_v2("comment", str(path), trainable=True)
    with tf.Graph().as_default():
        v1.feature_column.input_layer({"comment": tf.constant(TEXTS)}, [trainable])
        assert len(v1.trainable_variables()) == 1
    assert column.get_config() == {
        "key": "comment",
        "module_path": str(path),
        "output_key": None,
        "trainable": False,
    }


def test_text_embedding_column_v2_output_key(tmp_path):
    path = tmp_path / "dict_text"

    class DictText(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, text):
            length = tf.cast(tf.strings.length(text), tf.float32)[:, None]
            return {"short": tf.concat([length, length * 2], 1), "long": tf.tile(length, [1, 5])}

    tf.saved_model.save(DictText(), str(path))
    with tf.Graph().as_default():
        net = v1.feature_column.input_layer(
            {"t": tf.constant(["ab", "abcd"])},
            [hub.text_embedding_column_v2("t", str(path), output_key="short")],
        )
        np.testing.assert_allclose(_run(net), [[2.0, 4.0], [4.0, 8.0]])
    without_key = hub.text_embedding_column_v2("t", str(path))
    with pytest.raises(ValueError, match="Did you specify the right `output_key`"):
        _ = without_key.variable_shape
    wrong_key = hub.text_embedding_column_v2("t", str(path), output_key="middle")
    with pytest.raises(ValueError, match="output_key 'middle' is not among"):
        _ = wrong_key.variable_shape


PRELUDE_015 = f"""
import json, sys, types
sys.path.insert(0, {str(TFHUB015)!r})
import numpy as np
import tensorflow as tf
tf.compat.v1.estimator = types.SimpleNamespace(Exporter=object)  # removed from TF 2.16+
import tensorflow_hub as hub015
assert hub015.__version__ == "0.15.0", hub015.__version__
v1 = tf.compat.v1
def run(fetches):
    with v1.Session() as s:
        s.run([v1.global_variables_initializer(), v1.tables_initializer()])
        return s.run(fetches)
"""


def test_same_numbers_as_tensorflow_hub_015(text_module, tmp_path):
    assert (TFHUB015 / "tensorflow_hub").is_dir(), "make install puts tensorflow_hub 0.15 here"
    exported = {}
    for name, fn in (("tokens", _tokens_module_fn), ("image", _image_module_fn)):
        with tf.Graph().as_default():
            m = hub.Module(hub.create_module_spec(fn))
            with v1.Session() as session:
                session.run(v1.global_variables_initializer())
                m.export(str(tmp_path / name), session)
        exported[name] = str(tmp_path / name)
    images = np.random.default_rng(1).random((2, 7, 9, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    sparse = dict(indices=[[0, 0], [0, 1], [2, 0]], values=["a", "zzz", "c"], dense_shape=[3, 2])
    program = f"""
with tf.Graph().as_default():
    features = {{
        "comment": tf.constant({TEXTS!r}),
        "img": tf.constant(np.load({str(tmp_path / "images.npy")!r})),
        "tokens": tf.SparseTensor(**{sparse!r}),
    }}
    text = v1.feature_column.input_layer(
        features, [hub015.text_embedding_column("comment", {str(text_module)!r})])
    image = v1.feature_column.input_layer(
        features, [hub015.image_embedding_column("img", {exported["image"]!r})])
    tokens = v1.feature_column.input_layer(
        features, [hub015.sparse_text_embedding_column(
            "tokens", {exported["tokens"]!r}, "sqrtn", "<unk>")])
    spec = v1.feature_column.make_parse_example_spec(
        [hub015.image_embedding_column("img", {exported["image"]!r})])
    values = run([text, image, tokens])
print(json.dumps({{"text": values[0].tolist(), "image": values[1].tolist(),
                  "tokens": values[2].tolist(), "shape": list(spec["img"].shape)}}))
"""
    out = run_python(PRELUDE_015 + program, env={"TF_USE_LEGACY_KERAS": "1"})
    theirs = json.loads(out.strip().splitlines()[-1])
    with tf.Graph().as_default():
        features = {
            "comment": tf.constant(TEXTS),
            "img": tf.constant(images),
            "tokens": tf.SparseTensor(**sparse),
        }
        ours = _run(
            [
                v1.feature_column.input_layer(
                    features, [hub.text_embedding_column("comment", str(text_module))]
                ),
                v1.feature_column.input_layer(
                    features, [hub.image_embedding_column("img", exported["image"])]
                ),
                v1.feature_column.input_layer(
                    features,
                    [
                        hub.sparse_text_embedding_column(
                            "tokens", exported["tokens"], "sqrtn", "<unk>"
                        )
                    ],
                ),
            ]
        )
    np.testing.assert_allclose(ours[0], theirs["text"], rtol=1e-6)
    np.testing.assert_allclose(ours[1], theirs["image"], rtol=1e-5)
    np.testing.assert_allclose(ours[2], theirs["tokens"], rtol=1e-6)
    assert theirs["shape"] == [7, 9, 3]


def test_text_embedding_column_v2_in_tf_keras_dense_features(tmp_path):
    """0.15's own use of the v2 column: tf_keras' DenseFeatures (no such layer in Keras 3)."""
    path = models.save_text_embedding(tmp_path / "text")
    expected = hub.load(str(path))(tf.constant(TEXTS)).numpy()
    out = run_python(
        f"""
import json
import numpy as np, tensorflow as tf, tf_keras
import tfhub as hub
features = {{"comment": tf.constant([[t] for t in {TEXTS!r}])}}
frozen = tf_keras.layers.DenseFeatures([hub.text_embedding_column_v2("comment", {str(path)!r})])
values = frozen(features).numpy()
column = hub.text_embedding_column_v2("comment", {str(path)!r}, trainable=True)
layer = tf_keras.layers.DenseFeatures([column])
model = tf_keras.Sequential([layer, tf_keras.layers.Dense(1)])
model.compile(tf_keras.optimizers.SGD(0.5), "mse")
before = layer(features).numpy()
model.fit(features, np.ones((len(values), 1)), epochs=1, verbose=0)
after = layer(features).numpy()
print(json.dumps({{"values": values.tolist(), "frozen_weights": len(frozen.trainable_weights),
                  "weights": len(layer.trainable_weights),
                  "changed": bool(np.abs(after - before).max() > 1e-6)}}))
""",
        env={"TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": f"{REPO / 'src'}:{REPO}"},
    )
    result = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(result["values"], expected, rtol=1e-6)
    assert result["frozen_weights"] == 0
    assert result["weights"] == 1 and result["changed"]


def test_text_embedding_column_in_linear_model():
    spec = hub.create_module_spec(_tokens_module_fn)
    column = hub.text_embedding_column("t", spec)
    with tf.Graph().as_default():
        cols_to_vars = {}
        out = v1.feature_column.linear_model(
            {"t": tf.constant(["a", "b", "c"])}, [column], cols_to_vars=cols_to_vars
        )
        # The column's linear weights beside the module's own variable (also "weights").
        (weights,) = [v for v in cols_to_vars[column] if v.shape == (2, 1)]
        assert weights.name == "linear_model/t_hub_module_embedding/weights:0"
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            session.run([weights.assign([[1.0], [10.0]]), cols_to_vars["bias"][0].assign([0.5])])
            got = session.run(out)
    np.testing.assert_allclose(got, [[21.5], [53.5], [39.5]])
