"""Benchmark: cold install of a large model, tfhub vs tensorflow_hub, side by side.

Run with `make bench` (nginx must be installed: `apt-get install nginx`). Builds a real
SavedModel with MODEL_MB of float32 weights (default 400) and its tar.gz, serves the tarball
with nginx on 127.0.0.1 and publishes the model to our own server (`tfhub serve`), then
measures, interleaved, ROUNDS times each:

* cold install (`resolve` into an empty cache) from nginx with tfhub and with
  tensorflow_hub 0.16, timed inside each process around the `resolve` call only;
* cold install from our server with tfhub (the negotiated fast path), and, to separate the
  client's share from the server's, tfhub with the fast path off and tensorflow_hub 0.16
  from the same server (both get the tarball);
* the physical limit: a plain copy of the model directory (`shutil.copytree`);
* 16 concurrent clients (curl) downloading the tarball from nginx and from our server:
  aggregate throughput, and our server's RSS before and at its peak;
* warm resolve (a cache hit, with the completeness check) with tfhub;
* peak RSS of a process that only resolves the model with tfhub (no TensorFlow import).

Prints a table of medians and writes it to bench/last_download.md.

``python bench/download.py accel`` runs only the delivery rows: cold install with the fast
path through nginx (the hub answers ``X-Accel-Redirect``, deploy/nginx/tfhub.conf) and
straight from uvicorn, against a plain copy of the model directory, and the floor under
them: a bare loop that receives the same ranges through the same nginx and writes them (no
cache, no lock, no retries), without and with the per-block sha256 check; written to
bench/last_download_accel.md.
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
import threading
import time
from pathlib import Path

from report import write_table  # bench/report.py (this script's directory is on sys.path)

REPO = Path(__file__).resolve().parent.parent
MODEL_MB = int(os.environ.get("BENCH_MODEL_MB", "400"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONCURRENT_ROUNDS = int(os.environ.get("BENCH_CONCURRENT_ROUNDS", "3"))

WORKER = r"""
import json, os, resource, sys, time
which, url = sys.argv[1], sys.argv[2]
if which == "theirs":
    import tensorflow_hub as hub
else:
    import tfhub as hub
    # `import tensorflow_hub` imports everything it needs before the timer; do the same here
    # (tfhub imports its download machinery lazily, on first use).
    import tfhub.handles.http, tfhub.handles.fastpath, tfhub.handles.transfer  # noqa: E401
    tfhub.handles.transfer.inflate_module()
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
hub.resolve(url)
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": elapsed,
                  "user": after.ru_utime - before.ru_utime,
                  "system": after.ru_stime - before.ru_stime,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


BUILD = r"""
import sys
import numpy as np
import tensorflow as tf

class Big(tf.Module):
    def __init__(self, n):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w = tf.Variable(rng.standard_normal(n, dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x):
        return x * self.w[0]

tf.saved_model.save(Big(int(sys.argv[2]) << 18), sys.argv[1])
"""
CLIENTS = 16


def build_model(root: Path) -> Path:
    """A real SavedModel (our server validates what it publishes) with MODEL_MB of weights."""
    model = root / "model"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", BUILD, str(model), str(MODEL_MB)], check=True, env=env)
    return model


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def concurrent_download(url: str, pid: int | None) -> tuple[float, float]:
    """Seconds for CLIENTS curl processes to fetch ``url`` at once; peak server RSS (MB)."""
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set() and pid is not None:
            peak[0] = max(peak[0], _rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    procs = [
        subprocess.Popen(["curl", "-sf", "-o", "/dev/null", "--max-time", "600", url])
        for _ in range(CLIENTS)
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if any(codes):
        raise RuntimeError(f"curl failed for {url}: exit codes {codes}")
    return elapsed, peak[0]


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


# What any client pays here to receive the fast path's bytes through the same nginx, the same
# requests (the manifest's files, 8 blocks per range, 4 connections), written with pwrite:
# nothing else (no cache, no lock, no retries, no guard). With "sha256", each block is also
# hashed and compared with the manifest, as tfhub must. The floor the ratio target sits on.
BARE = r"""
import concurrent.futures, http.client, json, os, sys, threading, time
import urllib.parse, urllib.request
from tfhub import protocol  # the manifest's format: parsed as tfhub parses it
url, dest, verify = sys.argv[1], sys.argv[2], sys.argv[3] == "sha256"
start = time.perf_counter()
query = f"?{protocol.FORMAT_PARAM}={protocol.COMPRESSED}"
req = urllib.request.Request(url + query, headers={"Accept": protocol.ACCEPT_FILES})
with urllib.request.urlopen(req, timeout=30) as resp:
    manifest = protocol.FilesManifest.from_json(json.loads(resp.read()))
block = manifest.block_size
runs, fds = [], {}
for f in manifest.files:
    path = os.path.join(dest, f.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fds[f.path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    for first in range(0, len(f.blocks), 8):
        runs.append((f, first, min(first + 8, len(f.blocks))))
local = threading.local()
def fetch(run):
    f, first, end = run
    target = urllib.parse.urlsplit(urllib.parse.urljoin(url, f.url))
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    lo, hi = first * block, min(end * block, f.size) - 1
    conn.request("GET", target.path + ("?" + target.query if target.query else ""),
                 headers={"Range": f"bytes={lo}-{hi}"})
    resp = conn.getresponse()
    assert resp.status == 206, resp.status
    offset, index = lo, first
    digest = protocol.block_digest()
    while offset <= hi:
        chunk = resp.read1(min(256 << 10, (index + 1) * block - offset, hi + 1 - offset))
        if not chunk:
            sys.exit(f"the body of {f.path} ended at byte {offset}")
        if verify:
            digest.update(chunk)
        os.pwrite(fds[f.path], chunk, offset)
        offset += len(chunk)
        if offset == min((index + 1) * block, f.size):
            if verify:
                assert digest.hexdigest() == f.blocks[index]
                digest = protocol.block_digest()
            index += 1
    resp.read()
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(fetch, runs))
for fd in fds.values():
    os.close(fd)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def run_bare(url: str, dest: Path, verify: bool) -> float:
    dest.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", BARE, url, str(dest), "sha256" if verify else "none"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    if proc.returncode:
        raise RuntimeError(f"the bare receive loop failed on {url}:\n{proc.stderr[-3000:]}")
    shutil.rmtree(dest)
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def run_worker(
    which: str,
    url: str,
    cache: Path,
    extra_env: dict[str, str] | None = None,
    src: Path = REPO / "src",
) -> dict[str, float]:
    env = {
        **os.environ,
        **(extra_env or {}),
        "TFHUB_CACHE_DIR": str(cache),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(src),
    }
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, which, url], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise RuntimeError(f"{which} failed on {url}:\n{proc.stderr[-3000:]}")
    out = proc.stdout
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
    archive_size = (www / "1").stat().st_size
    archive_mb = archive_size / 1e6
    sys.path.insert(0, str(REPO / "src"))
    from tfhub.server.client import publish_to_root
    from tfhub.testing import start_hub_server

    publish_to_root(model, "pub/big/1", root=str(work / "hubroot"))
    nginx, port = start_nginx(work, work / "www")
    server, server_url = start_hub_server(
        work / "hubroot", env={"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO / "src")}
    )
    url = f"http://127.0.0.1:{port}/pub/big/1"
    fast_url = f"{server_url}/pub/big/1"
    runs = {  # name: (client, url, environment)
        "ours": ("ours", url, {}),
        "theirs": ("theirs", url, {}),
        "fast": ("ours", fast_url, {}),
        "ours_srv_tar": ("ours", fast_url, {"TFHUB_FAST_PATH": "0"}),
        "theirs_srv": ("theirs", fast_url, {}),
    }
    times: dict[str, list[float]] = {name: [] for name in [*runs, "copy"]}
    many: dict[str, list[float]] = {"nginx": [], "server": []}
    rss = []
    server_rss_idle = _rss_mb(server.pid)
    server_rss_peak = 0.0
    try:
        for i in range(ROUNDS):
            for which, (client, where, extra_env) in runs.items():
                cache = work / f"cache-{which}-{i}"
                os.sync()  # every run starts with no dirty pages left by the previous one
                result = run_worker(client, where, cache, extra_env)
                times[which].append(result["seconds"])
                if which == "ours":
                    rss.append(result["rss_mb"])
                    assert not result["tensorflow"], "resolving imported TensorFlow"
                shutil.rmtree(cache)
            os.sync()
            start = time.perf_counter()
            shutil.copytree(model, work / f"copy-{i}")
            times["copy"].append(time.perf_counter() - start)
            shutil.rmtree(work / f"copy-{i}")
            if i < CONCURRENT_ROUNDS:
                seconds, _ = concurrent_download(url, None)
                many["nginx"].append(seconds)
                seconds, peak = concurrent_download(
                    fast_url + "?tf-hub-format=compressed", server.pid
                )
                many["server"].append(seconds)
                server_rss_peak = max(server_rss_peak, peak)
        # Warm resolve, in-process (what every hub.load of a cached model pays).
        os.environ["TFHUB_CACHE_DIR"] = str(work / "cache-warm")
        import tfhub

        tfhub.resolve(url)
        warm = []
        for _ in range(200):
            start = time.perf_counter()
            tfhub.resolve(url)
            warm.append(time.perf_counter() - start)
        server_rss_after = _rss_mb(server.pid)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        server.terminate()
        server.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in times.items()}
    total_mb = CLIENTS * archive_size / 1e6
    tput = {k: total_mb / statistics.median(v) for k, v in many.items()}
    rows = [
        ("cold install from nginx, tfhub", f"{med['ours']:.2f} s", ""),
        ("cold install from nginx, tensorflow_hub 0.16", f"{med['theirs']:.2f} s", ""),
        ("  ratio tfhub / tensorflow_hub", f"{med['ours'] / med['theirs']:.2f}", "≤ 0.70"),
        ("cold install from our server (fast path), tfhub", f"{med['fast']:.2f} s", ""),
        ("cold install from our server, tfhub with TFHUB_FAST_PATH=0 (tarball)",
         f"{med['ours_srv_tar']:.2f} s", ""),
        ("cold install from our server, tensorflow_hub 0.16 (tarball)",
         f"{med['theirs_srv']:.2f} s", ""),
        ("  ratio fast path / tensorflow_hub from nginx", f"{med['fast'] / med['theirs']:.2f}",
         "≤ 0.30"),
        ("plain copy of the model directory (limit)", f"{med['copy']:.2f} s", ""),
        ("  ratio fast path / copy", f"{med['fast'] / med['copy']:.2f}", "≤ 3.0"),
        ("  ratio tfhub from nginx / copy", f"{med['ours'] / med['copy']:.2f}", ""),
        (f"{CLIENTS} clients at once, nginx (aggregate)", f"{tput['nginx']:.0f} MB/s", ""),
        (f"{CLIENTS} clients at once, our server (aggregate)", f"{tput['server']:.0f} MB/s", ""),
        ("  ratio our server / nginx", f"{tput['server'] / tput['nginx']:.2f}", "≥ 0.5"),
        ("our server's RSS: idle / peak under load / after", f"{server_rss_idle:.0f} / "
         f"{server_rss_peak:.0f} / {server_rss_after:.0f} MB", "flat"),
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
    write_table("download", header, rows)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def accel_main() -> int:
    """The fast path through nginx (X-Accel-Redirect) vs uvicorn vs a plain copy."""
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO))
    from tests.helpers.nginx import nginx, tfhub_snippet

    from tfhub.server.client import publish_to_root
    from tfhub.testing import start_hub_server

    work = Path(tempfile.mkdtemp(prefix="tfhub-bench-accel-"))
    os.chmod(work, 0o755)
    model = build_model(work)
    root = work / "hubroot"
    publish_to_root(model, "pub/big/1", root=str(root))
    base_env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO / "src")}
    accel_env = {**base_env, "TFHUB_ACCEL_REDIRECT": "/_tfhub_files/"}
    plain, plain_url = start_hub_server(root, env=base_env)
    accel, accel_url = start_hub_server(root, env=accel_env)
    # BENCH_BASELINE_SRC=/path/to/other/src adds the client of another checkout (e.g. the
    # previous version), through the same nginx, interleaved: before/after in one run.
    baseline = os.environ.get("BENCH_BASELINE_SRC")
    times: dict[str, list[float]] = {
        "nginx": [], "uvicorn": [], "bare": [], "bare_sha256": [], "copy": []
    }  # fmt: skip
    cpu: dict[str, list[tuple[float, float]]] = {"nginx": [], "uvicorn": []}
    if baseline:
        times["baseline"], cpu["baseline"] = [], []
    try:
        with nginx(tfhub_snippet(root, [accel_url.removeprefix("http://")])) as front:
            where = {"nginx": f"{front}/pub/big/1", "uvicorn": f"{plain_url}/pub/big/1"}
            if baseline:
                where["baseline"] = where["nginx"]
            for i in range(ROUNDS):
                for name, url in where.items():
                    cache = work / f"cache-{name}-{i}"
                    src = Path(baseline) if name == "baseline" and baseline else REPO / "src"
                    os.sync()
                    got = run_worker("ours", url, cache, src=src)
                    times[name].append(got["seconds"])
                    cpu[name].append((got["user"], got["system"]))
                    shutil.rmtree(cache)
                for kind in ("bare", "bare_sha256"):
                    os.sync()
                    dest = work / f"{kind}-{i}"
                    times[kind].append(run_bare(where["nginx"], dest, kind == "bare_sha256"))
                os.sync()
                start = time.perf_counter()
                shutil.copytree(model, work / f"copy-{i}")
                times["copy"].append(time.perf_counter() - start)
                shutil.rmtree(work / f"copy-{i}")
    finally:
        for proc in (plain, accel):
            proc.terminate()
            proc.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        ("cold install, fast path through nginx (X-Accel), tfhub", f"{med['nginx']:.2f} s", ""),
        ("cold install, fast path from uvicorn, tfhub", f"{med['uvicorn']:.2f} s", ""),
        ("plain copy of the model directory (limit)", f"{med['copy']:.2f} s", ""),
        ("  ratio fast path through nginx (X-Accel) / copy", f"{med['nginx'] / med['copy']:.2f}",
         "≤ 2.0"),
        ("  ratio fast path from uvicorn / copy", f"{med['uvicorn'] / med['copy']:.2f}", ""),
        ("bare receive loop through nginx, no verification (floor)", f"{med['bare']:.2f} s", ""),
        ("  ratio bare loop / copy", f"{med['bare'] / med['copy']:.2f}", ""),
        ("bare receive loop through nginx + sha256 of every block (floor with the check)",
         f"{med['bare_sha256']:.2f} s", ""),
        ("  ratio bare loop with sha256 / copy", f"{med['bare_sha256'] / med['copy']:.2f}", ""),
    ]  # fmt: skip
    for name, label in (
        ("nginx", "through nginx"),
        ("baseline", "through nginx, baseline"),
        ("uvicorn", "from uvicorn"),
    ):
        if cpu.get(name):
            user = statistics.median(u for u, _ in cpu[name])
            system = statistics.median(s for _, s in cpu[name])
            rows.append(
                (f"  client CPU, {label}: user / system", f"{user:.2f} / {system:.2f} s", "")
            )
    if baseline:
        rows[1:1] = [
            (f"cold install, fast path through nginx, client of {baseline}",
             f"{med['baseline']:.2f} s", ""),
            ("  ratio baseline client through nginx / copy",
             f"{med['baseline'] / med['copy']:.2f}", ""),
        ]  # fmt: skip
    header = (
        f"Model: {MODEL_MB} MB of float32 weights. Medians of {ROUNDS} interleaved runs. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}."
    )
    write_table("download_accel", header, rows)
    print("raw:", json.dumps(times))
    print("cpu:", json.dumps(cpu))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _has_isal() -> bool:
    try:
        import isal  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(accel_main() if sys.argv[1:] == ["accel"] else main())
