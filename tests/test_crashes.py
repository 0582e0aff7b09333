"""Many processes at once, and processes killed (SIGKILL) at fixed points of a download."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest

import tfhub as hub
from tests.helpers import python_env
from tests.helpers.routes import StopAt
from tfhub.handles import cache
from tfhub.testing import HostingServer


def _fake_model_tarball(size: int) -> bytes:
    """A model-shaped archive (resolve does not load it): a graph file and a big shard."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (
            ("saved_model.pb", b"\x08\x01"),
            ("variables/variables.index", b"index"),
            ("variables/variables.data-00000-of-00001", os.urandom(size)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _slow_route(body: bytes, seconds: float):
    chunk = 64 << 10
    pause = seconds / max(1, len(body) // chunk)

    def route(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for start in range(0, len(body), chunk):
                h.wfile.write(body[start : start + chunk])
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed

    return route


def _resolver(url: str, env: dict[str, str]) -> subprocess.Popen[str]:
    code = "import tfhub, sys; print(tfhub.resolve(sys.argv[1]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(env),
    )


def test_sixteen_processes_one_download(cache_dir):
    body = _fake_model_tarball(2 << 20)
    with HostingServer({"pub/big/1": _slow_route(body, 1.0)}) as server:
        url = server.url("pub/big/1")
        procs = [_resolver(url, {}) for _ in range(16)]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 16, [err for _, err in outputs]
        paths = {out.strip() for out, _ in outputs}
        assert paths == {str(cache.entry_path(url))}
        assert server.count("pub/big/1") == 1  # exactly one download reached the server
    assert cache.check_entry(cache.entry_path(url)) is None
    assert not [n for n in os.listdir(cache_dir) if n.endswith((".lock", ".tmp"))]


# 20 fixed kill points (bytes of the archive sent when the client is killed): before the
# response, after the headers, in the gzip and tar headers, through the big shard, one byte
# short, and every byte out (the client then extracts and commits while being killed).
KILL_POINTS = [None, 0, 1, 10, 100, 512, 1024, 4096, 65536]
KILL_POINTS += [f"{k}0%" for k in range(1, 10)] + ["all-but-1", "all"]


def _stop_offset(point: int | str | None, size: int) -> int | None:
    if point is None or isinstance(point, int):
        return point
    if point == "all":
        return size
    if point == "all-but-1":
        return size - 1
    return size * int(point.rstrip("%")) // 100


def _point_id(point: int | str | None) -> str:
    if point is None or point == 0:
        return "before-response" if point is None else "after-headers"
    return f"{point}B" if isinstance(point, int) else point.replace("%", "pct")


@pytest.mark.parametrize("point", KILL_POINTS, ids=_point_id)
def test_kill_9_at_a_fixed_point_never_leaves_a_usable_broken_entry(point, cache_dir):
    body = _fake_model_tarball(1 << 20)
    route = StopAt(body, _stop_offset(point, len(body)))
    with HostingServer({"pub/big/1": route}) as server:
        url = server.url("pub/big/1")
        proc = _resolver(url, {})
        try:
            assert route.reached.wait(timeout=120), "the client never reached the kill point"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            route.release.set()
        assert proc.returncode == -signal.SIGKILL or point == "all"  # killed, not finished
        entry = cache.entry_path(url)
        # Whatever was left, it is either complete or ignored.
        assert cache.lookup(url) in (None, entry)
        if entry.exists():
            assert cache.check_entry(entry) is None or cache.lookup(url) is None
        start = time.monotonic()
        path = hub.resolve(url)  # the dead holder's lock is taken over at once
        assert time.monotonic() - start < 20
    assert cache.check_entry(entry) is None and path == str(entry)
    assert cache.verify_entry(entry) == []


def test_closing_a_stream_early_stops_its_threads():
    import gzip
    import threading

    from tfhub.handles.transfer import PipelinedStream

    before = threading.active_count()
    stream = PipelinedStream(io.BytesIO(gzip.compress(os.urandom(40 << 20), compresslevel=1)))
    assert len(stream.read(10)) == 10
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 3
    assert threading.active_count() == before
