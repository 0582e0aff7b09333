"""Benchmark: cold install of a large model from nginx, tfhub vs tensorflow_hub, side by side.

Run with `make bench` (nginx must be installed: `apt-get install nginx`). Builds a model
directory with MODEL_MB of float32 weights (default 400) and its tar.gz, serves it with nginx
on 127.0.0.1, and measures, interleaved, ROUNDS times each:

* cold install (`resolve` into an empty cache) with tfhub and with tensorflow_hub 0.16,
  timed inside each process around the `resolve` call only;
* the physical limit: a plain copy of the model directory (`shutil.copytree`);
* warm resolve (a cache hit, with the completeness check) with tfhub;
* peak RSS of a process that only resolves the model with tfhub (no TensorFlow import).

Prints a table of medians and writes it to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODEL_MB = int(os.environ.get("BENCH_MODEL_MB", "400"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))

WORKER = r"""
import json, os, resource, sys, time
which, url = sys.argv[1], sys.argv[2]
if which == "theirs":
    import tensorflow_hub as hub
else:
    import tfhub as hub
start = time.perf_counter()
hub.resolve(url)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def build_model(root: Path) -> Path:
    model = root / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"\x08\x01" + os.urandom(64 << 10))
    (model / "variables" / "variables.index").write_bytes(os.urandom(4 << 10))
    rng = np.random.default_rng(0)
    with open(model / "variables" / "variables.data-00000-of-00001", "wb") as f:
        for _ in range(MODEL_MB):
            f.write(rng.standard_normal(1 << 18, dtype=np.float32).tobytes())  # 1 MB
    return model


def start_nginx(root: Path, www: Path) -> tuple[subprocess.Popen[bytes], int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    conf = root / "nginx.conf"
    conf.write_text(
        f"""
daemon off; worker_processes 2; pid {root}/nginx.pid; error_log {root}/nginx.err;
user root;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
  server {{ listen 127.0.0.1:{port}; root {www}; default_type application/gzip; }}
}}
"""
    )
    (root / "tmp").mkdir(exist_ok=True)
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(root)])
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"nginx did not start: {(root / 'nginx.err').read_text()}")


def run_worker(which: str, url: str, cache: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "TFHUB_CACHE_DIR": str(cache),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(REPO / "src"),
    }
    out = subprocess.run(
        [sys.executable, "-c", WORKER, which, url],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    if shutil.which("nginx") is None:
        print("nginx is missing: apt-get install nginx", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="tfhub-bench-dl-"))
    os.chmod(work, 0o755)
    model = build_model(work)
    www = work / "www" / "pub" / "big"
    www.mkdir(parents=True)
    with tarfile.open(www / "1", "w:gz") as tar:
        tar.add(model, arcname=".")
    archive_mb = (www / "1").stat().st_size / 1e6
    nginx, port = start_nginx(work, work / "www")
    url = f"http://127.0.0.1:{port}/pub/big/1"
    times: dict[str, list[float]] = {"ours": [], "theirs": [], "copy": []}
    rss = []
    try:
        for i in range(ROUNDS):
            for which in ("ours", "theirs"):
                cache = work / f"cache-{which}-{i}"
                result = run_worker(which, url, cache)
                times[which].append(result["seconds"])
                if which == "ours":
                    rss.append(result["rss_mb"])
                    assert not result["tensorflow"], "resolving imported TensorFlow"
                shutil.rmtree(cache)
            start = time.perf_counter()
            shutil.copytree(model, work / f"copy-{i}")
            times["copy"].append(time.perf_counter() - start)
            shutil.rmtree(work / f"copy-{i}")
        # Warm resolve, in-process (what every hub.load of a cached model pays).
        sys.path.insert(0, str(REPO / "src"))
        os.environ["TFHUB_CACHE_DIR"] = str(work / "cache-warm")
        import tfhub

        tfhub.resolve(url)
        warm = []
        for _ in range(200):
            start = time.perf_counter()
            tfhub.resolve(url)
            warm.append(time.perf_counter() - start)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        ("cold install from nginx, tfhub", f"{med['ours']:.2f} s", ""),
        ("cold install from nginx, tensorflow_hub 0.16", f"{med['theirs']:.2f} s", ""),
        ("  ratio tfhub / tensorflow_hub", f"{med['ours'] / med['theirs']:.2f}", "≤ 0.70"),
        ("plain copy of the model directory (limit)", f"{med['copy']:.2f} s", ""),
        ("  ratio tfhub / copy", f"{med['ours'] / med['copy']:.2f}", ""),
        ("warm resolve (cache hit + completeness check)", f"{statistics.median(warm) * 1e3:.3f} ms",
         "≤ 2 ms"),
        ("peak RSS of a process that only resolves", f"{statistics.median(rss):.0f} MB",
         "≤ 150 MB"),
    ]  # fmt: skip
    header = (
        f"Model: {MODEL_MB} MB of float32 weights, tar.gz {archive_mb:.0f} MB, served by nginx on "
        f"127.0.0.1. Medians of {ROUNDS} interleaved runs. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"isal {'yes' if _has_isal() else 'no'}."
    )
    table = "| measure | median | target |\n|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} |" for a, b, c in rows
    )
    print(header)
    print(table)
    (REPO / "bench" / "last_download.md").write_text(header + "\n\n" + table + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _has_isal() -> bool:
    try:
        import isal  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
