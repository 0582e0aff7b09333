"""Downloads answered by redirects: a hub on S3 (moto's server) with presigned URLs, and the
fast path's rule for following a redirect of a file (tfhub.handles.redirects)."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
import requests
import tensorflow_hub  # the peer client, a test dependency: a missing one fails, never skips

import tfhub as hub
from tests.helpers.hub import HubServer, tree
from tfhub import errors, protocol
from tfhub.server.client import publish_to_root
from tfhub.testing import make_tarball


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from tests.helpers import models

    return models.save_mul(tmp_path_factory.mktemp("mul") / "model")


def test_a_hub_on_s3_redirects_downloads_to_presigned_urls(
    s3_endpoint, model_dir, cache_dir, tmp_path
):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="hub")
    record = publish_to_root(model_dir, "acme/mul/1", root="s3://hub/models")
    env = {"TFHUB_REDIRECT_DOWNLOADS": "1", "TFHUB_REDIRECT_EXPIRY": "120"}
    with HubServer("s3://hub/models", env=env) as srv:
        url = f"{srv.url}/acme/mul/1?tf-hub-format=compressed"
        first = requests.get(url, allow_redirects=False, timeout=30)
        assert first.status_code == 307 and first.headers["Cache-Control"] == "no-store"
        location = first.headers["Location"]
        assert location.startswith(f"{s3_endpoint}/hub/models/acme/mul/1/")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        assert query["X-Amz-Expires"] == ["120"] and "X-Amz-Signature" in query
        assert first.headers[protocol.SHA256_HEADER] == record["archive"]["sha256"]
        whole = requests.get(url, timeout=30)  # followed to moto
        assert hashlib.sha256(whole.content).hexdigest() == record["archive"]["sha256"]
        part = requests.get(url, headers={"Range": "bytes=3-12"}, timeout=30)
        assert part.status_code == 206 and part.content == whole.content[3:13]
        # The hub still checks first: nothing is redirected for what it does not publish.
        none = requests.get(f"{srv.url}/acme/none/1?tf-hub-format=compressed", timeout=30)
        assert none.status_code == 404
        stray = hashlib.sha256(b"x").hexdigest()
        blob = requests.get(f"{srv.url}/api/blobs/{stray}", allow_redirects=False, timeout=30)
        assert blob.status_code == 404

        # tfhub: the fast path (manifest from the hub, blobs through 307s to moto).
        assert tree(Path(hub.resolve(f"{srv.url}/acme/mul/1"))) == tree(model_dir)
        blob_lines = [
            line for line in srv.logs().splitlines() if "/api/blobs/" in line and stray not in line
        ]
        assert blob_lines and all(" 307 " in line for line in blob_lines), blob_lines
        # tfhub's archive path (fast path off): the tarball through the 307.
        with pytest.MonkeyPatch.context() as m:
            m.setenv("TFHUB_FAST_PATH", "0")
            m.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tar-cache"))
            assert tree(Path(hub.resolve(f"{srv.url}/acme/mul/1"))) == tree(model_dir)
        # tensorflow_hub 0.16: the archive through the 307.
        with pytest.MonkeyPatch.context() as m:
            m.setenv("TFHUB_CACHE_DIR", str(tmp_path / "th-cache"))
            theirs = tensorflow_hub.resolve(f"{srv.url}/acme/mul/1")
        assert tree(Path(theirs)) == tree(model_dir)
        # Another valid archive planted in the bucket: the 307 stated the record's sha256,
        # so tfhub's archive path refuses the bytes it is sent and installs nothing.
        planted = tmp_path / "planted"
        shutil.copytree(model_dir, planted)
        (planted / "assets").mkdir(exist_ok=True)
        (planted / "assets" / "payload.txt").write_text("not what was published")
        bucket = boto3.client("s3", endpoint_url=s3_endpoint)
        key = f"models/{record['archive']['key']}"
        original = bucket.get_object(Bucket="hub", Key=key)["Body"].read()
        bucket.put_object(Bucket="hub", Key=key, Body=make_tarball(planted))
        with pytest.MonkeyPatch.context() as m:
            m.setenv("TFHUB_FAST_PATH", "0")
            m.setenv("TFHUB_CACHE_DIR", str(tmp_path / "planted-cache"))
            with pytest.raises(errors.ArchiveError, match=record["archive"]["sha256"]):
                hub.resolve(f"{srv.url}/acme/mul/1")
        assert not list((tmp_path / "planted-cache").rglob("payload.txt"))
        bucket.put_object(Bucket="hub", Key=key, Body=original)


def test_redirect_settings_are_checked(tmp_path, monkeypatch):
    from tfhub.server.app import create_app

    for env, message in (
        ({"TFHUB_REDIRECT_DOWNLOADS": "1"}, "TFHUB_REDIRECT_DOWNLOADS=1 needs a storage"),
        ({"TFHUB_ACCEL_REDIRECT": "_files"}, "TFHUB_ACCEL_REDIRECT='_files' is not valid"),
        ({"TFHUB_REDIRECT_EXPIRY": "0"}, "TFHUB_REDIRECT_EXPIRY='0' must be at least 1"),
    ):
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            m.setenv("TFHUB_REDIRECT_DOWNLOADS", env.get("TFHUB_REDIRECT_DOWNLOADS", "0"))
            if "TFHUB_REDIRECT_EXPIRY" in env:
                from tfhub import config

                with pytest.raises(errors.ConfigError, match=message):
                    config.redirect_expiry()
                continue
            with pytest.raises(errors.ConfigError, match=message):
                create_app(str(tmp_path / "root"))


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    seen: list[tuple[str, dict[str, str]]] = []

    def do_GET(self):
        self.seen.append((self.path, dict(self.headers)))
        status, headers, body = self.routes.get(self.path.split("?")[0], (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def _server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"routes": {}, "seen": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    finally:
        srv.shutdown()
        srv.server_close()


def _fake_hub(hub_handler, model_dir: Path, location_for) -> None:
    """A hub answering the manifest of ``model_dir``; each file's URL redirects to
    ``location_for(relpath)``."""
    entries = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        data = path.read_bytes()
        with open(path, "rb") as f:
            blocks = tuple(protocol.iter_block_hashes(f, protocol.BLOCK_SIZE))
        sha = hashlib.sha256(data).hexdigest()
        entries.append(protocol.FileEntry(rel, len(data), sha, f"/blobs/{sha}", blocks))
        hub_handler.routes[f"/blobs/{sha}"] = (307, {"Location": location_for(rel)}, b"")
    manifest = protocol.FilesManifest(protocol.BLOCK_SIZE, tuple(entries))
    hub_handler.routes["/acme/mul/1"] = (
        200,
        {"Content-Type": protocol.FILES_MEDIA_TYPE, "Set-Cookie": "hubsession=secret; Path=/"},
        json.dumps(manifest.to_json()).encode(),
    )


def _serve_files(handler, model_dir: Path, *, corrupt: bool = False) -> None:
    for path in (p for p in model_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if corrupt and data:
            data = bytes([data[0] ^ 1]) + data[1:]
        rel = path.relative_to(model_dir).as_posix()
        content_range = f"bytes 0-{len(data) - 1}/{len(data)}"
        handler.routes[f"/store/{rel}"] = (206, {"Content-Range": content_range}, data)


def test_redirects_to_another_origin_carry_no_credentials(model_dir, cache_dir):
    with _server() as (hub_url, hub_h), _server() as (store_url, store_h):
        _fake_hub(hub_h, model_dir, lambda rel: f"{store_url}/store/{rel}")
        _serve_files(store_h, model_dir)
        path = Path(hub.resolve(f"{hub_url}/acme/mul/1"))
        assert tree(path) == tree(model_dir)
        fetched = [(p, h) for p, h in store_h.seen if p.startswith("/store/")]
        assert len(fetched) == len(tree(model_dir))
        for _path, headers in fetched:
            lowered = {k.lower() for k in headers}
            assert "cookie" not in lowered and "authorization" not in lowered
            assert "range" in lowered


def test_a_redirect_target_cannot_change_the_bytes(model_dir, cache_dir):
    with _server() as (hub_url, hub_h), _server() as (store_url, store_h):
        _fake_hub(hub_h, model_dir, lambda rel: f"{store_url}/store/{rel}")
        _serve_files(store_h, model_dir, corrupt=True)
        with pytest.raises(errors.ProtocolError, match="sha256"):
            hub.resolve(f"{hub_url}/acme/mul/1")
        assert not any(p.is_dir() and p.name.endswith("mul") for p in cache_dir.rglob("*"))


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/x", "link-local"),
        ("http://0.0.0.0:1/x", "unspecified"),
        ("file:///etc/passwd", "not an http"),
        ("gopher://127.0.0.1/x", "not an http"),
    ],
)
def test_forbidden_redirect_targets_are_not_followed(model_dir, cache_dir, location, why):
    with _server() as (hub_url, hub_h):
        _fake_hub(hub_h, model_dir, lambda rel: location)
        with pytest.raises(errors.ProtocolError, match=why):
            hub.resolve(f"{hub_url}/acme/mul/1")


def test_the_rule_for_hubs_elsewhere():
    from tfhub.handles.redirects import redirect_target

    def target(file_url: str, location: str) -> str:
        return redirect_target("h", "a.bin", file_url, file_url, location)

    hub_file = "https://hub.example.com/api/blobs/ab"
    assert target(hub_file, "https://bucket.s3.amazonaws.com/k?sig=1").startswith("https://bucket")
    for location, why in (
        ("http://bucket.s3.amazonaws.com/k", "downgrade"),
        ("https://127.0.0.1/k", "loopback"),
        ("https://localhost:9000/k", "loopback"),
        ("https://[::1]/k", "loopback"),
    ):
        with pytest.raises(errors.ProtocolError, match=why):
            target(hub_file, location)
