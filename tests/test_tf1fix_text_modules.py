"""TF1 text modules in TF2 (issue 12, items 3 and 4): the declared output shape reaches Keras
(Keras 3 and tf_keras, compared with tensorflow_hub 0.16), and the 1-D tokens module of TF
Hub's text-embedding exporter loads and gives the numbers of a TF1 Session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO, run_python
from tests.helpers import tf1_modules as mods
from tfhub import cli
from tfhub.errors import UsageError
from tfhub.exporters.text_embedding import export_text_embedding

v1 = tf.compat.v1
VECTORS = "cat 1.11 2.56 3.45\ndog 1.0 2.0 3.0\nmouse 0.5 0.1 0.6\n"
CAT, DOG, MOUSE = (
    np.array([1.11, 2.56, 3.45], np.float32),
    np.array([1.0, 2.0, 3.0], np.float32),
    np.array([0.5, 0.1, 0.6], np.float32),
)
SENTENCES = ["cat dog", "mouse", "", "Lizard cat"]
# Children import the tfhub this process runs (a checkout's src/) and the tests package.
SRC = Path(hub.__file__).resolve().parents[1]
CHILD_PATH = {"PYTHONPATH": os.pathsep.join([str(SRC), str(REPO)])}


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    path.write_text(VECTORS)
    return path


@pytest.fixture(scope="module")
def sentence_module(vectors: Path) -> str:
    return export_text_embedding(vectors, vectors.parent / "sentences_tf1", format="tf1")


def _session_values(path: str, inputs: object, signature: str = "default") -> dict:
    with tf.Graph().as_default():
        outputs = hub.Module(path)(inputs, signature=signature, as_dict=True)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            return session.run(outputs)


def test_tf1_text_module_on_a_symbolic_string_input_in_keras3(sentence_module):
    inputs = keras.Input(shape=(), dtype="string")
    embedded = hub.KerasLayer(sentence_module)(inputs)
    assert tuple(embedded.shape) == (None, 3)
    model = keras.Sequential(
        [
            keras.Input(shape=(), dtype="string"),
            hub.KerasLayer(sentence_module),
            keras.layers.Dense(1, kernel_initializer="ones"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    data = tf.data.Dataset.from_tensor_slices((SENTENCES, [1.0, 0.0, 0.0, 1.0])).batch(2)
    history = model.fit(data, epochs=2, verbose=0, shuffle=False)
    assert all(np.isfinite(history.history["loss"]))
    # The embedding inside the model is the TF1 module's, as a Session computes it.
    functional = keras.Model(inputs, embedded)
    expected = _session_values(sentence_module, SENTENCES)["default"]
    np.testing.assert_allclose(functional(tf.constant(SENTENCES)), expected, rtol=1e-6)
    np.testing.assert_allclose(expected[0], (CAT + DOG) / np.sqrt(2), rtol=1e-6)
    # hub.Module in a TF1 graph gives the declared shape too.
    with tf.Graph().as_default():
        graph_out = hub.Module(sentence_module)(v1.placeholder(tf.string, [None]))
        assert graph_out.shape.as_list() == [None, 3]


@pytest.fixture(scope="module")
def tf_keras_runs(sentence_module: str, vectors: Path) -> dict[str, dict]:
    """Both kinds of module (sentences, tokens) through ours and tensorflow_hub 0.16's
    KerasLayer in tf_keras, in one new process with TF_USE_LEGACY_KERAS=1 (as their users run
    them): kind → its module, inputs, lines printed and layer outputs."""
    tokens_module = export_text_embedding(
        vectors, vectors.parent / "tokens_016", format="tf1", preprocessing=False
    )
    cases = {
        "sentences": (sentence_module, SENTENCES),
        "tokens": (tokens_module, ["dog", "", "lizard", "cat"]),
    }
    out = run_python(
        f"""
        import json, numpy as np, tensorflow as tf, tf_keras
        import tensorflow_hub as tfh
        import tfhub as hub
        print("ours from", hub.__file__)
        for kind, (path, sentences) in {cases!r}.items():
            result = {{}}
            for name, make in (("ours", hub.KerasLayer), ("theirs", tfh.KerasLayer)):
                layer = make(path)
                inputs = tf.keras.Input(shape=(), dtype=tf.string)
                print(kind, name, "symbolic", layer(inputs).shape.as_list())
                model = tf.keras.Sequential(
                    [tf.keras.Input(shape=(), dtype=tf.string), layer, tf.keras.layers.Dense(1)]
                )
                model.compile(tf.keras.optimizers.SGD(0.01), "mse")
                model.fit(tf.constant(sentences), np.array([1.0, 0, 0, 1]), epochs=1, verbose=0)
                print(kind, name, "is tf_keras", isinstance(layer, tf_keras.layers.Layer))
                result[name] = layer(tf.constant(sentences)).numpy().tolist()
            print("JSON", kind, json.dumps(result))
        """,
        env={"TF_USE_LEGACY_KERAS": "1", **CHILD_PATH},
    )
    assert f"ours from {SRC}" in out
    runs = {}
    for kind, (module, sentences) in cases.items():
        lines = [line for line in out.splitlines() if line.startswith(f"{kind} ")]
        result = json.loads(out.split(f"JSON {kind} ", 1)[1].splitlines()[0])
        runs[kind] = {"module": module, "sentences": sentences, "lines": lines, "result": result}
    return runs


@pytest.mark.parametrize("kind", ["sentences", "tokens"])
def test_tf1_text_module_in_tf_keras_like_tensorflow_hub_016(tf_keras_runs, kind):
    run = tf_keras_runs[kind]
    for name in ("ours", "theirs"):
        assert f"{kind} {name} symbolic [None, 3]" in run["lines"]
        assert f"{kind} {name} is tf_keras True" in run["lines"]
    result = run["result"]
    np.testing.assert_allclose(result["ours"], result["theirs"], rtol=1e-6)
    np.testing.assert_allclose(
        result["ours"], _session_values(run["module"], run["sentences"])["default"], rtol=1e-6
    )


def test_tokens_module_takes_1d_tokens_and_loads(vectors, tmp_path, capsys):
    path = str(tmp_path / "tokens_tf1")
    argv = ["export-text-embedding", str(vectors), path, "--format", "tf1", "--no-preprocessing"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    spec = hub.load_module_spec(path)
    ((key, info),) = spec.get_input_info_dict().items()
    assert key == "tokens" and info.dtype == tf.string and info.get_shape().as_list() == [None]
    output = spec.get_output_info_dict()["default"]
    assert output.dtype == tf.float32 and output.get_shape().as_list() == [None, 3]
    tokens = ["dog", "cat", "", "lizard", "mouse", "cat"]
    expected = _session_values(path, tokens)["default"]
    zero = np.zeros(3, np.float32)  # "" and the (zero-initialised) OOV bucket
    np.testing.assert_allclose(expected, [DOG, CAT, zero, zero, MOUSE, CAT], rtol=1e-6)
    obj = hub.load(path)
    np.testing.assert_allclose(obj(tf.constant(tokens)), expected, rtol=1e-6)
    np.testing.assert_allclose(
        obj.signatures["default"](tokens=tf.constant(tokens))["default"], expected, rtol=1e-6
    )
    layer_out = hub.KerasLayer(path)(keras.Input(shape=(), dtype="string"))
    assert tuple(layer_out.shape) == (None, 3)
    # A wrong rank is refused by name, before the graph fails deep inside.
    with pytest.raises(UsageError, match=r"'tokens'.*shape \(None,\).*\(2, 1\)"):
        obj(tf.constant([["cat"], ["dog"]]))


def test_hand_made_1d_tokens_module_loads_like_a_session_runs_it(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\nc\n")
    spec = hub.create_module_spec(mods.make_vocab_module_fn(vocab))
    path = str(tmp_path / "m")
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            module.export(path, session)
    tokens = ["c", "zzz", "a", "b"]
    expected = _session_values(path, tokens)
    obj = hub.load(path)
    got = obj.signatures["default"](tf.constant(tokens))
    np.testing.assert_allclose(got["default"], expected["default"])
    assert got["ids"].numpy().tolist() == expected["ids"].tolist() == [2, 3, 0, 1]
    assert obj(tf.constant(tokens)).shape.as_list() == [4, 2]
