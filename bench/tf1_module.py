"""Benchmark: instantiate + apply a TF1 Hub module, tfhub vs tensorflow_hub 0.15, side by side.

Run with `make bench-tf1`. Builds a module (an embedding table plus a two-layer MLP, about
25 MB of float32 weights) with tfhub, then alternates worker processes of both libraries,
each timing `Module(path)` + one call + variable initialization + one `Session.run`, in a
fresh graph per repetition. Prints medians and the ratio ours / theirs (target ≤ 1.0).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TFHUB015 = REPO / ".venv" / "tfhub015"
ROUNDS, REPS = 4, 5

WORKER = r"""
import json, os, sys, time, types
which, path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
if which == "theirs":
    sys.path.insert(0, os.environ["TFHUB015"])
import numpy as np
import tensorflow as tf
if which == "theirs":
    tf.compat.v1.estimator = types.SimpleNamespace(Exporter=object)
    import tensorflow_hub as hub
else:
    import tfhub as hub
v1 = tf.compat.v1
ids = np.arange(64, dtype=np.int64) % 10000
times = []
for _ in range(reps + 1):  # the first repetition warms up imports and kernels
    start = time.perf_counter()
    with tf.Graph().as_default():
        m = hub.Module(path)
        out = m(ids)
        with v1.Session() as s:
            s.run(v1.global_variables_initializer())
            s.run(out)
    times.append(time.perf_counter() - start)
print(json.dumps(times[1:]))
"""


def build_module(path: Path) -> None:
    import tensorflow as tf

    import tfhub as hub

    v1 = tf.compat.v1

    def module_fn():
        ids = v1.placeholder(tf.int64, [None])
        table = v1.get_variable(
            "embeddings", [10000, 512], initializer=v1.random_normal_initializer()
        )
        h = tf.gather(table, ids)
        for i, units in enumerate((1024, 512)):
            w = v1.get_variable(f"dense{i}/kernel", [h.shape[-1], units])
            h = tf.nn.relu(tf.matmul(h, w))
        hub.add_signature(inputs=ids, outputs=h)

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(str(path), session)


def main() -> int:
    if not (TFHUB015 / "tensorflow_hub").is_dir():
        print("tensorflow_hub 0.15 is missing: run `make install` first.", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="tfhub-bench-"))
    module = work / "module"
    build_module(module)
    size = sum(f.stat().st_size for f in module.rglob("*") if f.is_file())
    env = {
        **os.environ,
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TFHUB015": str(TFHUB015),
    }
    results: dict[str, list[float]] = {"ours": [], "theirs": []}
    for _ in range(ROUNDS):
        for which in ("ours", "theirs"):
            out = subprocess.run(
                [sys.executable, "-c", WORKER, which, str(module), str(REPS)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            results[which] += json.loads(out.strip().splitlines()[-1])
    ours, theirs = statistics.median(results["ours"]), statistics.median(results["theirs"])
    print(
        f"TF1 hub.Module instantiate+apply+init+run, module of {size / 1e6:.1f} MB, "
        f"{ROUNDS * REPS} runs each, interleaved"
    )
    print(f"  tfhub                 median {ours * 1000:8.1f} ms")
    print(f"  tensorflow_hub 0.15   median {theirs * 1000:8.1f} ms")
    print(f"  ratio ours / theirs   {ours / theirs:.2f}   (target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
