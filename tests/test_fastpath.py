"""The fast path (files manifest + parallel verified ranges), its fallback, and resume."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

import tfhub as hub
from tests.helpers import REPO
from tests.helpers.hub import HubServer, InProcessHub, publish, tree
from tfhub import protocol
from tfhub.handles import cache
from tfhub.handles.fastpath import parse_files_manifest
from tfhub.server.client import publish_to_root
from tfhub.testing import HostingServer, make_tarball, send


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    """A real SavedModel whose variables file spans several 4 MiB blocks (about 12 MB)."""
    import tensorflow as tf

    class Big(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_uniform([3_000_000], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return x * self.w[0]

    path = tmp_path_factory.mktemp("big") / "model"
    tf.saved_model.save(Big(), str(path))
    return path


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory, big_model):
    """``tfhub serve`` (its access log is read) with acme/big/1 published up front (straight to
    its root, so that this server never needs a validator: publishing is not tested here)."""
    root = tmp_path_factory.mktemp("hubroot")
    publish_to_root(big_model, "acme/big/1", root=str(root))
    srv = HubServer(str(root))
    try:
        yield srv, root
    finally:
        srv.stop()


def _blob_requests(srv: HubServer) -> list[str]:
    return [line for line in srv.logs().splitlines() if "/api/blobs/" in line]


def test_fast_path_fetches_files_in_parallel_ranges(hub_server, big_model, cache_dir, monkeypatch):
    srv, _ = hub_server
    monkeypatch.setenv("TFHUB_DOWNLOAD_WORKERS", "3")
    before = len(_blob_requests(srv))
    path = Path(hub.resolve(f"{srv.url}/acme/big/1"))
    assert tree(path) == tree(big_model)
    deadline = time.monotonic() + 10  # access-log lines arrive through a pipe, a bit later
    while len(_blob_requests(srv)) - before < len(tree(big_model)) and time.monotonic() < deadline:
        time.sleep(0.05)
    ranged = _blob_requests(srv)[before:]
    # the 12 MB variables file alone is 3 blocks; every file comes from a blob, by range
    assert len(ranged) >= len(tree(big_model)) and all(" 206 " in line for line in ranged)
    # the cache manifest records what was verified: each block's sha256
    manifest = json.loads(Path(str(path) + cache.MANIFEST_SUFFIX).read_text())["files"]
    for rel, record in manifest.items():
        data = (big_model / rel).read_bytes()
        size = record["block_size"]
        assert record["blocks"] == [
            hashlib.sha256(data[o : o + size]).hexdigest() for o in range(0, len(data), size)
        ]
    assert not cache.partial_path(path).exists()
    assert cache.verify_entry(path) == []
    assert hub.load(str(path))  # a real model
    # and `tfhub cache verify` finds an altered byte through the block hashes
    victim = path / "variables" / "variables.data-00000-of-00001"
    data = bytearray(victim.read_bytes())
    data[9 << 20] ^= 1
    victim.write_bytes(bytes(data))
    assert cache.verify_entry(path) == [
        "variables/variables.data-00000-of-00001 has 1 altered block(s), the first at byte "
        f"{8 << 20}"
    ]


def test_other_clients_still_get_the_tarball(hub_server, big_model):
    srv, _ = hub_server
    url = f"{srv.url}/acme/big/1?tf-hub-format=compressed"
    plain = requests.get(url, timeout=60)
    assert plain.headers["Content-Type"] == "application/gzip"
    assert plain.content[:2] == b"\x1f\x8b"
    fast = requests.get(url, headers={"Accept": protocol.FILES_MEDIA_TYPE}, timeout=60)
    assert fast.headers["Content-Type"].startswith(protocol.FILES_MEDIA_TYPE)
    doc = fast.json()
    assert doc["version"] == 1 and doc["block_size"] == 4 << 20
    assert {f["path"] for f in doc["files"]} == set(tree(big_model))
    # a blob serves ranges and names its sha256
    f = max(doc["files"], key=lambda f: f["size"])
    part = requests.get(srv.url + f["url"], headers={"Range": "bytes=4194304-4194313"}, timeout=60)
    assert part.status_code == 206 and len(part.content) == 10
    assert part.headers["X-Tfhub-Sha256"] == f["sha256"]


def test_fast_path_off_uses_the_tarball(hub_server, big_model, cache_dir, monkeypatch):
    srv, _ = hub_server
    monkeypatch.setenv("TFHUB_FAST_PATH", "0")
    before = len(_blob_requests(srv))
    path = hub.resolve(f"{srv.url}/acme/big")
    assert tree(Path(path)) == tree(big_model)
    assert len(_blob_requests(srv)) == before


def test_falls_back_to_the_plain_protocol(models, cache_dir):
    """A plain hosting-protocol server ignores our Accept header: the tarball is used."""
    with HostingServer({"m": models["mul"]}) as srv:
        path = hub.resolve(srv.url("m"))
    assert tree(Path(path)) == tree(models["mul"])


def test_a_tampered_block_is_refused(tmp_path_factory, big_model, cache_dir, monkeypatch):
    # One retry: the transfer the server cuts at the tampered block resumes there and gets
    # the 503 (that retries are bounded is test_resolve.py's business; the backoff between
    # the default 4 retries of the 503 was most of this test's time).
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "1")
    root = tmp_path_factory.mktemp("tampered")
    srv = InProcessHub(root)
    try:
        assert publish(srv.url, "acme/big/1", make_tarball(big_model)).status_code == 201
        blobs = sorted((root / ".blobs").iterdir(), key=lambda p: p.stat().st_size)
        victim = blobs[-1]  # the variables file
        data = bytearray(victim.read_bytes())
        data[5 << 20] ^= 0xFF  # one byte in the second block, same size
        victim.write_bytes(bytes(data))
        url = f"{srv.url}/acme/big/1"
        # The server checks each block against the record before sending it (see
        # test_server_trust.py), so the tampered block never reaches the client: a 503.
        with pytest.raises(hub.DownloadError, match=r"503") as err:
            hub.resolve(url)
        assert err.value.handle == url
    finally:
        srv.stop()
    entry = cache.entry_path(url, cache_dir)
    assert not entry.exists() and cache.lookup(url, cache_dir) is None


# --- resume, against a small server of our own that can cut or stall transfers ----------

BLOCK = 64 << 10


class _FileServer:
    """Serves one model as a files manifest (64 KiB blocks) plus ranged blobs, counting the
    bytes it sends; ``cut_after`` makes the first blob response break off after that many
    bytes, ``stall`` makes blob responses wait until released."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self.files = {p.relative_to(model).as_posix(): p for p in model.rglob("*") if p.is_file()}
        self.sent = 0
        self.ranges: list[str] = []
        self.cut_after: int | None = None
        self.stall = threading.Event()
        self.stall.set()
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        routes = {"pub/m/1": self._manifest}
        for i, rel in enumerate(self.files):
            routes[f"blob/{i}"] = self._blob(rel)
        self.server = HostingServer(routes)

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.stall.set()
        self.server.stop()

    def _manifest(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        files = []
        for i, (rel, path) in enumerate(self.files.items()):
            data = path.read_bytes()
            blocks = [
                hashlib.sha256(data[o : o + BLOCK]).hexdigest() for o in range(0, len(data), BLOCK)
            ]
            files.append(
                {
                    "path": rel,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "url": f"/blob/{i}",
                    "blocks": blocks,
                }
            )
        body = json.dumps({"version": 1, "block_size": BLOCK, "files": files}).encode()
        send(handler, body, headers=(("Content-Type", protocol.FILES_MEDIA_TYPE),))

    def _blob(self, rel: str):
        def route(handler: http.server.BaseHTTPRequestHandler) -> None:
            data = self.files[rel].read_bytes()
            match = re.match(r"bytes=(\d+)-(\d+)", handler.headers.get("Range", ""))
            assert match, "the fast path always asks for a range"
            start, end = int(match[1]), int(match[2])
            with self._lock:
                self.ranges.append(f"{rel}:{start}-{end}")
            body = data[start : end + 1]
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if not self.stall.is_set():
                handler.wfile.write(body[: len(body) // 2])
                handler.wfile.flush()
                with self._lock:
                    self.sent += len(body) // 2
                self.stalled.set()
                self.stall.wait(60)
                return
            with self._lock:
                cut, self.cut_after = self.cut_after, None
            if cut is not None:
                handler.wfile.write(body[:cut])
                handler.wfile.flush()
                with self._lock:
                    self.sent += cut
                handler.close_connection = True
                handler.connection.shutdown(2)  # the transfer breaks off mid-body
                return
            handler.wfile.write(body)
            with self._lock:
                self.sent += len(body)

        return route

    @property
    def url(self) -> str:
        return self.server.url("pub/m/1")


def _model_bytes(model: Path) -> int:
    return sum(p.stat().st_size for p in model.rglob("*") if p.is_file())


def test_a_broken_transfer_resumes_at_the_first_unverified_block(big_model, cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_DOWNLOAD_WORKERS", "1")
    with _FileServer(big_model) as srv:
        srv.cut_after = 3 * BLOCK + 1000  # 3 blocks verified, the 4th broken
        path = hub.resolve(srv.url)
        ranges = list(srv.ranges)
        sent = srv.sent
    assert tree(Path(path)) == tree(big_model)
    total = _model_bytes(big_model)
    assert total < sent < total + 4 * BLOCK  # not started over
    # the request after the break starts at the 4th block of the same run
    first_rel, first_range = ranges[0].split(":")
    start = int(first_range.split("-")[0])
    assert f"{first_rel}:{start + 3 * BLOCK}-" in "\n".join(ranges[1:])


def test_a_killed_download_resumes_in_the_next_process(big_model, cache_dir):
    """kill -9 in the middle of a download; the next resolve fetches only what is missing."""
    with _FileServer(big_model) as srv:
        srv.stall.clear()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "TFHUB_CACHE_DIR": str(cache_dir),
            "TFHUB_DOWNLOAD_WORKERS": "2",
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", f"import tfhub; tfhub.resolve({srv.url!r})"], env=env
        )
        try:
            assert srv.stalled.wait(60)
            time.sleep(0.5)  # let the completed requests' blocks land
            entry = cache.entry_path(srv.url, cache_dir)
            partial = cache.partial_path(entry)
            assert partial.is_dir()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        srv.stall.set()
        first_sent = srv.sent
        srv.sent = 0
        path = hub.resolve(srv.url)  # takes over the dead process's lock at once
        second_sent = srv.sent
    assert tree(Path(path)) == tree(big_model)
    assert first_sent > 0
    assert second_sent < _model_bytes(big_model) - BLOCK  # what was verified is not fetched
    assert not partial.exists()


def test_the_tarball_resumes_with_a_range_request(models, cache_dir):
    body = make_tarball(models["text"])
    etag = '"v1"'
    seen: list[str | None] = []

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        rng = handler.headers.get("Range")
        seen.append(rng)
        headers = (("ETag", etag), ("Accept-Ranges", "bytes"))
        if rng is None:  # the first answer breaks off half-way
            handler.send_response(200)
            for k, v in headers:
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        assert handler.headers.get("If-Range") == etag
        start = int(re.match(r"bytes=(\d+)-$", rng)[1])
        send(
            handler,
            body[start:],
            206,
            (*headers, ("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")),
        )

    with HostingServer({"m": route}) as srv:
        path = hub.resolve(srv.url("m"))
    assert tree(Path(path)) == tree(models["text"])
    assert seen[0] is None and len(seen) == 2
    assert 0 < int(re.match(r"bytes=(\d+)-", seen[1])[1]) <= len(body) // 2


# --- the manifest is checked like an archive ---------------------------------------------


def _doc(**file):
    entry = {"path": "saved_model.pb", "size": 3, "sha256": "a" * 64, "url": "/b", **file}
    entry.setdefault("blocks", ["b" * 64])
    return json.dumps({"version": 1, "block_size": BLOCK, "files": [entry]}).encode()


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        (_doc(path="../x"), hub.ArchiveError, "outside the model directory"),
        (_doc(path="/etc/passwd"), hub.ArchiveError, "absolute path"),
        (_doc(blocks=[]), hub.ProtocolError, "block hashes"),
        (_doc(url="file:///etc/passwd"), hub.ProtocolError, "not http"),
        (_doc(size=-1), hub.ProtocolError, "size"),
        (_doc(sha256="zz"), hub.ProtocolError, "sha256"),
        (b"{not json", hub.ProtocolError, "not JSON"),
        (json.dumps({"version": 9}).encode(), hub.ProtocolError, "version 1"),
    ],
)
def test_bad_manifests_are_refused(doc, error, message):
    with pytest.raises(error, match=message):
        parse_files_manifest(doc, handle="h", url="http://127.0.0.1/m")


def test_manifest_size_limit(monkeypatch):
    monkeypatch.setenv("TFHUB_MAX_MODEL_BYTES", "2")
    with pytest.raises(hub.ArchiveTooLargeError):
        parse_files_manifest(_doc(), handle="h", url="http://127.0.0.1/m")
