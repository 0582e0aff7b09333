"""Benchmark: the cost of `hub.KerasLayer` over calling the SavedModel directly, and against
`tensorflow_hub`'s KerasLayer on tf_keras, side by side in one run.

Builds a Reusable SavedModel (an MLP: 256 → 1024 → 1024 → 256, float32, `__call__` traced
for training=True/False). Each measurement runs in its own process, the processes alternate
(ROUNDS times), and each one reports the median of STEPS timed calls after a warm-up:

* forward: an eager call on a batch of BATCH rows: `obj(x, training=False)` on the loaded
  SavedModel vs `layer(x)` of our Keras 3 KerasLayer vs tensorflow_hub 0.16's KerasLayer
  (tf_keras, TF_USE_LEGACY_KERAS=1);
* one fit step with a Dense(10) head, plain SGD, sparse softmax cross-entropy, two ways:
  - the same hand-written `tf.function` step (GradientTape, `assign_sub`) over the loaded
    SavedModel plus head variables vs over a Keras 3 model holding our trainable KerasLayer
    (what the layer itself costs);
  - `model.train_on_batch` of that Keras 3 model (jit_compile=False) vs of a tf_keras model
    with tensorflow_hub's trainable KerasLayer (the whole framework step, side by side).

Prints a table and writes it to bench/last_keras_layer.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from report import write_table  # bench/report.py (this script's directory is on sys.path)

REPO = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
STEPS = int(os.environ.get("BENCH_STEPS", "30"))
BATCH = int(os.environ.get("BENCH_BATCH", "64"))

BUILD = r"""
import sys
import tensorflow as tf

class MLP(tf.train.Checkpoint):
    def __init__(self):
        super().__init__()
        init = tf.random.stateless_normal
        sizes = [(256, 1024), (1024, 1024), (1024, 256)]
        self.ws = [tf.Variable(init(s, seed=[i, 0]) * 0.03) for i, s in enumerate(sizes)]
        self.bs = [tf.Variable(tf.zeros([s[1]])) for s in sizes]
        self.variables = self.ws + self.bs
        self.trainable_variables = self.ws + self.bs
        self.regularization_losses = []

    @tf.function
    def __call__(self, x, training=False):
        for w, b in zip(self.ws, self.bs):
            x = tf.nn.relu(tf.matmul(x, w) + b)
        return x

m = MLP()
spec = tf.TensorSpec([None, 256], tf.float32)
for training in (True, False):
    m.__call__.get_concrete_function(spec, training=training)
serve = m.__call__.get_concrete_function(spec, training=False)
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": serve})
"""

WORKER = r"""
import json, os, statistics, sys, time
which, path, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import numpy as np
import tensorflow as tf
x = tf.constant(np.random.default_rng(0).standard_normal((batch, 256), dtype=np.float32))
y = tf.constant(np.random.default_rng(1).integers(0, 10, batch))

def timed(fn):
    for _ in range(5):
        fn()
    out = []
    for _ in range(steps):
        start = time.perf_counter()
        r = fn()
        if hasattr(r, "numpy"):
            r.numpy()
        out.append(time.perf_counter() - start)
    return statistics.median(out)

def loss_fn(logits):
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))

result = {}
if which == "direct":
    obj = tf.saved_model.load(path)
    result["forward"] = timed(lambda: obj(x, training=False))
    head_w = tf.Variable(tf.random.normal([256, 10], seed=0) * 0.05)
    head_b = tf.Variable(tf.zeros([10]))
    variables = list(obj.trainable_variables) + [head_w, head_b]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(tf.matmul(obj(x, training=True), head_w) + head_b)
        for v, g in zip(variables, tape.gradient(loss, variables)):
            v.assign_sub(0.01 * g)
        return loss
    result["loop"] = timed(step)
elif which == "ours":
    import keras
    import tfhub as hub
    layer = hub.KerasLayer(path)
    result["forward"] = timed(lambda: layer(x))
    obj = tf.saved_model.load(path)

    class Bare(keras.layers.Layer):  # the floor: Keras 3's own Layer.__call__, nothing else
        def call(self, inputs):
            return obj(inputs, training=False)

    bare = Bare()
    result["forward_bare"] = timed(lambda: bare(x))
    model = keras.Sequential([keras.Input((256,)), hub.KerasLayer(path, trainable=True),
                              keras.layers.Dense(10)])
    variables = model.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(model(x, training=True))
        for v, g in zip(variables, tape.gradient(loss, variables)):
            v.assign_sub(0.01 * g)
        return loss
    result["loop"] = timed(step)
    model.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    result["train_on_batch"] = timed(lambda: model.train_on_batch(x, y))
else:
    import tensorflow_hub as hub
    import tf_keras
    layer = hub.KerasLayer(path)
    result["forward"] = timed(lambda: layer(x))
    model = tf_keras.Sequential([tf_keras.Input((256,)), hub.KerasLayer(path, trainable=True),
                                 tf_keras.layers.Dense(10)])
    model.compile(tf_keras.optimizers.SGD(0.01),
                  tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result["train_on_batch"] = timed(lambda: model.train_on_batch(x, y))
print(json.dumps(result))
"""


def run(which: str, path: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": str(REPO / "src"),
    }
    if which == "theirs":
        env["TF_USE_LEGACY_KERAS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, which, str(path), str(STEPS), str(BATCH)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode:
        raise RuntimeError(f"{which} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="tfhub-bench-layer-"))
    model = work / "mlp"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", BUILD, str(model)], check=True, env=env)
    results: dict[str, dict[str, list[float]]] = {w: {} for w in ("direct", "ours", "theirs")}
    for _ in range(ROUNDS):
        for which in ("direct", "ours", "theirs"):
            for k, v in run(which, model).items():
                results[which].setdefault(k, []).append(v)
    med = {w: {k: statistics.median(v) for k, v in d.items()} for w, d in results.items()}
    d, o, t = med["direct"], med["ours"], med["theirs"]
    rows = [
        ("forward (eager call): SavedModel called directly", f"{d['forward'] * 1e3:.2f} ms", ""),
        ("forward (eager call): tfhub KerasLayer (Keras 3)", f"{o['forward'] * 1e3:.2f} ms", ""),
        ("forward (eager call): tensorflow_hub KerasLayer (tf_keras)",
         f"{t['forward'] * 1e3:.2f} ms", ""),
        ("forward (eager call): a bare keras.layers.Layer calling the SavedModel",
         f"{o['forward_bare'] * 1e3:.2f} ms", ""),
        ("  ratio tfhub / direct", f"{o['forward'] / d['forward']:.2f}", "≤ 1.05"),
        ("  ratio tfhub / bare Keras 3 layer", f"{o['forward'] / o['forward_bare']:.2f}", ""),
        ("  ratio tfhub / tensorflow_hub", f"{o['forward'] / t['forward']:.2f}", "≤ 1.0"),
        ("fit step, same tf.function loop: SavedModel + head variables",
         f"{d['loop'] * 1e3:.2f} ms", ""),
        ("fit step, same tf.function loop: Keras 3 model with tfhub KerasLayer",
         f"{o['loop'] * 1e3:.2f} ms", ""),
        ("  ratio tfhub / direct", f"{o['loop'] / d['loop']:.2f}", "≤ 1.05"),
        ("fit step, train_on_batch: tfhub KerasLayer (Keras 3)",
         f"{o['train_on_batch'] * 1e3:.2f} ms", ""),
        ("fit step, train_on_batch: tensorflow_hub KerasLayer (tf_keras)",
         f"{t['train_on_batch'] * 1e3:.2f} ms", ""),
        ("  ratio tfhub / tensorflow_hub", f"{o['train_on_batch'] / t['train_on_batch']:.2f}",
         "≤ 1.0"),
    ]  # fmt: skip
    header = (
        f"MLP 256→1024→1024→256 (1.6 M parameters), batch {BATCH}; medians of {STEPS} steps per "
        f"process, median over {ROUNDS} alternating processes each. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}."
    )
    write_table("keras_layer", header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
