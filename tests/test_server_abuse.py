"""Server abuse: uploads cut at random points, a server killed mid-upload, slow clients.

The hubs run in this process (:class:`InProcessHub`) except the one that is killed: a
`tfhub serve` process, whose store a hub started after it must show as if nothing happened."""

from __future__ import annotations

import random
import socket
import tempfile
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers.hub import TOKEN, HubServer, InProcessHub, publish, tree
from tfhub.errors import PublishError
from tfhub.server.app import create_app
from tfhub.server.catalog import Catalog
from tfhub.server.client import publish_to_root
from tfhub.server.publish import Publisher
from tfhub.server.storage import open_storage
from tfhub.testing import make_tarball


def _raw_put(url: str, path: str, body: bytes, *, send: int, declared: int) -> None:
    """Sends a PUT that declares ``declared`` bytes, sends ``send`` of them, then hangs up."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/gzip\r\nContent-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:send])
        time.sleep(0.05)


@pytest.fixture()
def temp(tmp_path, monkeypatch):
    """This test's temp directory (``tempfile`` here, ``TMPDIR`` for a server process): what
    the hubs leave in it can be seen."""
    path = tmp_path / "temp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture()
def hub_server(tmp_path):
    with InProcessHub(tmp_path / "store") as srv:
        yield srv


def test_uploads_cut_at_random_points_store_nothing(hub_server, models, tmp_path):
    body = make_tarball(models["text"])
    rng = random.Random(7)
    for _ in range(10):
        _raw_put(hub_server.url, "/api/models/test/cut/1", body, send=rng.randrange(len(body)),
                 declared=len(body))  # fmt: skip
    time.sleep(0.5)
    assert tree(tmp_path / "store") == {}
    assert requests.get(f"{hub_server.url}/api/models/test/cut/1", timeout=30).status_code == 404
    assert publish(hub_server.url, "test/cut/1", body).status_code == 201  # still serving


def test_server_killed_mid_upload_leaves_nothing_visible(tmp_path, models, temp):
    """Nothing in the store, and the partial upload in the killed server's working directory
    is removed by the next hub started on this host."""
    body = make_tarball(models["text"])
    first = HubServer(str(tmp_path / "store"), env={"TMPDIR": str(temp)})
    parts = urlsplit(first.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        (
            f"PUT /api/models/test/crash/1 HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[: len(body) // 2]
    )
    time.sleep(0.3)
    first.proc.kill()  # SIGKILL: no cleanup at all
    first.proc.wait(timeout=10)
    sock.close()
    (left,) = [p for p in temp.iterdir() if p.name.startswith("tfhub-publish-")]
    assert f"-{first.proc.pid}-" in left.name
    assert sum(f.stat().st_size for f in left.rglob("*") if f.is_file()) > 0  # the partial upload
    second = InProcessHub(tmp_path / "store")
    try:
        assert not left.exists()
        url = second.url
        assert requests.get(f"{url}/api/models/test/crash/1", timeout=30).status_code == 404
        assert (
            requests.get(f"{url}/test/crash/1?tf-hub-format=compressed", timeout=30).status_code
            == 404
        )
        assert publish(url, "test/crash/1", body).status_code == 201
    finally:
        second.stop()
    assert list(temp.iterdir()) == []  # the hub that stopped removed its own


def test_slow_clients_do_not_block_others(hub_server, models):
    parts = urlsplit(hub_server.url)
    slow = []
    for _ in range(20):  # each sends half a request line and then nothing
        s = socket.create_connection((parts.hostname, parts.port), timeout=10)
        s.sendall(b"GET /api/mod")
        slow.append(s)
    try:
        start = time.monotonic()
        assert requests.get(f"{hub_server.url}/api/models", timeout=10).status_code == 200
        assert time.monotonic() - start < 5
    finally:
        for s in slow:
            s.close()


def test_a_hub_that_is_only_read_makes_no_working_directory(tmp_path, models, temp):
    """The publisher's working directory is made on the first upload: a read-only hub (or an
    app that is never served) leaves nothing in the temp directory."""

    def ours() -> list[str]:  # not TensorFlow's own temp files (autograph writes some)
        return [p.name for p in temp.iterdir() if p.name.startswith("tfhub-")]

    publish_to_root(models["mul"], "test/mul/1", root=str(tmp_path / "store"))
    assert ours() == []  # publish_to_root removed its own
    create_app(str(tmp_path / "store"))  # never served: no lifespan ever closes it
    with InProcessHub(tmp_path / "store") as hub:
        url = f"{hub.url}/test/mul/1?tf-hub-format=compressed"
        assert requests.get(url, timeout=30).status_code == 200
    assert ours() == []
    # A closed publisher takes no upload (it would make a directory nothing removes).
    publisher = Publisher(
        Catalog(open_storage(str(tmp_path / "store"))), max_upload_bytes=10, inspect_timeout=1
    )
    publisher.new_upload().discard()
    assert len(ours()) == 1
    publisher.close()
    assert ours() == []
    with pytest.raises(PublishError, match="shutting down") as err:
        publisher.new_upload()
    assert err.value.status == 503 and ours() == []
