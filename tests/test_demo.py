"""What only the README's demo (examples/demo.py) shows: a real pretrained network, published to
our hub server with the Python API and loaded by URL in Keras 3, learns a real task.

The demo's other steps are tested elsewhere, more closely: serving, loading by URL, training
and fine-tuning a classifier on hub.KerasLayer and re-exporting (test_finetune.py), the
.keras round trip (test_keras_layer.py), the MiniLM conversion against its PyTorch reference
and fine-tuning all its weights (test_sentence_transformer.py), publishing and the fast path
(test_server.py, test_fastpath.py). `make demo` runs the whole script.
"""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO
from tests.helpers.hub import TOKEN, InProcessHub
from tfhub.server.client import publish_to_server


def _demo_module():
    """examples/demo.py as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location("tfhub_demo", REPO / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_minilm_from_our_hub_learns_word_sentiment(tmp_path, minilm):
    demo = _demo_module()
    assert minilm["code"] == 0, minilm["stderr"]
    out = minilm["dir"]  # the demo's conversion, shared with the other tests
    name = "sentence-transformers/all-minilm-l6-v2/1"
    with InProcessHub(tmp_path / "hub-root") as server:
        publish_to_server(f"{out}/sentence_embedding", name, server=server.url, token=TOKEN)
        url = f"{server.url}/{name}"
        vectors = hub.load(url)(
            tf.constant(["A man is eating food.", "A man eats a meal.", "Rain."])
        )
        sims = (vectors @ tf.transpose(vectors)).numpy()
        assert sims[0, 1] > sims[0, 2]  # the demo's similarity check

        # The demo's word-sentiment task, with the encoder frozen: VADER's human ratings.
        words, labels = demo.vader_words(300)
        x, y = tf.constant(words), np.array(labels, np.float32)
        model = keras.Sequential(
            [
                keras.Input(shape=(), dtype="string"),
                hub.KerasLayer(url, name="minilm"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
        model.fit(x[:400], y[:400], epochs=8, batch_size=32, verbose=0)
        held_out = model.evaluate(x[400:], y[400:], verbose=0)[1]
    assert held_out > 0.75, held_out  # what the demo asserts (and prints)
