"""Delivery off the Python path: the hub behind a real nginx with X-Accel-Redirect.

The hub (a real ``tfhub serve`` process) checks each download and answers with an empty
``X-Accel-Redirect``; nginx (the shipped deploy/nginx/tfhub.conf) sends the bytes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import requests
import tensorflow_hub  # the peer client, a test dependency: a missing one fails, never skips

import tfhub as hub
from tests.helpers.hub import HubServer, tree
from tests.helpers.nginx import nginx, tfhub_snippet
from tfhub import errors, protocol
from tfhub.server.client import publish_to_root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real SavedModel with a variables file of a little over two 4 MiB blocks."""
    import tensorflow as tf

    class Wide(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_uniform([2_200_000], seed=[3, 4]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return x * self.w[0]

    path = tmp_path_factory.mktemp("wide") / "model"
    tf.saved_model.save(Wide(), str(path))
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory, model_dir):
    """(nginx URL, hub server, storage root, record) for acme/wide/1."""
    root = tmp_path_factory.mktemp("accel-root")
    record = publish_to_root(model_dir, "acme/wide/1", root=str(root))
    srv = HubServer(str(root), env={"TFHUB_ACCEL_REDIRECT": "/_tfhub_files/"})
    try:
        upstream = srv.url.removeprefix("http://")
        with nginx(tfhub_snippet(root, [upstream])) as url:
            yield url, srv, root, record
    finally:
        srv.stop()


def _hub_log_lines(srv: HubServer, path: str) -> list[str]:
    srv.wait_for_log(path)
    return [line for line in srv.logs().splitlines() if f" {path}" in line]


def test_archives_and_blobs_are_sent_by_nginx(site):
    url, srv, root, record = site
    archive = record["archive"]
    data = (root / archive["key"]).read_bytes()
    resp = requests.get(f"{url}/acme/wide/1?tf-hub-format=compressed", timeout=30)
    assert resp.status_code == 200 and resp.content == data
    assert hashlib.sha256(resp.content).hexdigest() == archive["sha256"]
    assert resp.headers[protocol.SHA256_HEADER] == archive["sha256"]
    assert resp.headers["Content-Type"] == "application/gzip"
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "X-Accel-Redirect" not in resp.headers  # nginx consumes it
    # The hub answered without a body: the bytes came from nginx.
    lines = _hub_log_lines(srv, "/acme/wide/1?tf-hub-format=compressed")
    assert lines and all(re.search(r" 200 0 [0-9.]+ms$", line) for line in lines), lines

    big = max(record["blobs"]["files"], key=lambda f: f["size"])
    assert big["size"] > 2 * protocol.BLOCK_SIZE
    start, end = protocol.BLOCK_SIZE - 5, 2 * protocol.BLOCK_SIZE + 4
    ranged = requests.get(
        f"{url}/api/blobs/{big['sha256']}",
        headers={"Range": f"bytes={start}-{end}"},
        timeout=30,
    )
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes {start}-{end}/{big['size']}"
    blob = (root / ".blobs" / big["sha256"]).read_bytes()
    assert ranged.content == blob[start : end + 1]
    assert ranged.headers[protocol.SHA256_HEADER] == big["sha256"]
    lines = _hub_log_lines(srv, f"/api/blobs/{big['sha256']}")
    assert lines and all(re.search(r" 200 0 [0-9.]+ms$", line) for line in lines), lines


def test_the_hub_still_checks_and_the_storage_is_not_reachable(site):
    url, _srv, root, record = site
    big = record["blobs"]["files"][0]
    for path in (
        f"/_tfhub_files/.blobs/{big['sha256']}",  # the internal location: 404 from outside
        "/_tfhub_files/acme/wide/1/meta.json",
        f"/_tfhub_files/{record['archive']['key']}",
    ):
        resp = requests.get(url + path, timeout=30)
        assert resp.status_code == 404 and resp.content != (root / path[14:]).read_bytes()
    # A file in the storage that no record references is not handed out.
    stray = hashlib.sha256(b"stray").hexdigest()
    (root / ".blobs" / stray).write_bytes(b"stray")
    resp = requests.get(f"{url}/api/blobs/{stray}", timeout=30)
    assert resp.status_code == 404 and resp.json()["error"].startswith("No published file")
    assert (
        requests.get(f"{url}/acme/none/1?tf-hub-format=compressed", timeout=30).status_code == 404
    )
    assert requests.get(f"{url}/api/blobs/..%2f..%2fetc%2fpasswd", timeout=30).status_code == 404


def test_clients_load_through_nginx(site, model_dir, cache_dir, tmp_path):
    url, _srv, _root, _record = site
    path = Path(hub.resolve(f"{url}/acme/wide/1"))  # the fast path, blobs from nginx
    assert tree(path) == tree(model_dir)
    with pytest.MonkeyPatch.context() as m:  # tfhub's archive path, the tarball from nginx
        m.setenv("TFHUB_FAST_PATH", "0")
        m.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tar-cache"))
        assert tree(Path(hub.resolve(f"{url}/acme/wide/1"))) == tree(model_dir)
    with pytest.MonkeyPatch.context() as m:  # tensorflow_hub 0.16: the tarball from nginx
        m.setenv("TFHUB_CACHE_DIR", str(tmp_path / "th-cache"))
        theirs = tensorflow_hub.resolve(f"{url}/acme/wide/1")
    assert tree(Path(theirs)) == tree(model_dir)


def test_a_file_altered_in_storage_is_refused_by_the_client(site, model_dir, cache_dir):
    """nginx sends stored bytes unchecked: the fast path's block hashes catch a change."""
    url, _srv, root, record = site
    small = min(record["blobs"]["files"], key=lambda f: f["size"] if f["size"] else 1 << 60)
    blob = root / ".blobs" / small["sha256"]
    original = blob.read_bytes()
    blob.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    try:
        with pytest.raises(errors.ProtocolError, match="sha256"):
            hub.resolve(f"{url}/acme/wide/1")
    finally:
        blob.write_bytes(original)


def test_an_archive_swapped_in_storage_is_refused_by_the_client(
    site, model_dir, cache_dir, tmp_path, monkeypatch
):
    """nginx sends the stored archive unchecked; the hub still states its record's sha256
    (the snippet passes the header on), and tfhub's tarball path checks the bytes against it:
    another valid archive planted in the storage is refused and nothing is installed."""
    url, _srv, root, record = site
    stored = root / record["archive"]["key"]
    original = stored.read_bytes()
    planted_dir = tmp_path / "planted"
    planted_dir.mkdir()
    for item in model_dir.rglob("*"):
        target = planted_dir / item.relative_to(model_dir)
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(item.read_bytes())
    (planted_dir / "assets").mkdir(exist_ok=True)
    (planted_dir / "assets" / "payload.txt").write_text("not what was published")
    from tfhub.testing import make_tarball

    monkeypatch.setenv("TFHUB_FAST_PATH", "0")  # the tarball path
    stored.write_bytes(make_tarball(planted_dir))
    try:
        with pytest.raises(errors.ArchiveError, match=record["archive"]["sha256"]):
            hub.resolve(f"{url}/acme/wide/1")
        assert not list(cache_dir.rglob("payload.txt"))
    finally:
        stored.write_bytes(original)
    # the untouched archive installs through the same path
    assert (Path(hub.resolve(f"{url}/acme/wide/1")) / "saved_model.pb").is_file()
