"""Private models on the hub: without a read grant, a private model answers exactly like a
model that does not exist, on every route (page, API, search, archive, manifest, blob, HEAD,
Range); with one, it is served. One in-process hub (uvicorn in a thread) per module."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.models import MyMulModel
from tfhub import protocol
from tfhub.server.publish import Tokens  # where it was before access.py
from tfhub.testing import make_tarball


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


ADMIN = "admin-token-0123456789abcdef"
ACME = "acme-reader-0123456789abcdef"
SECRET_ONLY = "secret-reader-0123456789abcdef"
TEAM = "team-reader-0123456789abcdef"
OTHER = "other-reader-0123456789abcdef"
UNKNOWN = "nobody-knows-0123456789abcdef"
TOKEN_FILE = f"""# hashed tokens only (ADMIN is TFHUB_PUBLISH_TOKEN)
{hash_token(ACME)} read=acme
{hash_token(SECRET_ONLY)} read=acme/secret
{hash_token(TEAM)} read=team
{hash_token(OTHER)} read=other publish=other
"""
FILES = protocol.FILES_MEDIA_TYPE


class InProcessHub:
    """``create_app`` served by uvicorn on 127.0.0.1 (port 0) in a daemon thread."""

    def __init__(self, root: Path, tokens: Tokens) -> None:
        import uvicorn

        from tfhub.server.app import create_app

        self.app = create_app(str(root), tokens=tokens)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the in-process hub did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _save_mul(path: Path, value: float) -> Path:
    import tensorflow as tf

    tf.saved_model.save(MyMulModel(value), str(path))
    return path


def _put(url: str, name: str, archive: bytes, token: str, **params: str) -> requests.Response:
    return requests.put(
        f"{url}/api/models/{name}",
        data=archive,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    tmp = tmp_path_factory.mktemp("access")
    (tmp / "tokens").write_text(TOKEN_FILE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TFHUB_TOKEN_FILE", str(tmp / "tokens"))
        mp.setenv("TFHUB_PRIVATE_NAMESPACES", "team")
        mp.setenv("TFHUB_PUBLISH_TOKEN", ADMIN)
        tokens = Tokens.from_env()
    server = InProcessHub(tmp / "store", tokens)
    try:
        public = make_tarball(_save_mul(tmp / "public", 2.0))
        for name, archive, params in (
            ("acme/public/1", public, {}),
            ("acme/secret/1", make_tarball(_save_mul(tmp / "secret", 3.0)), {"private": "true"}),
            ("acme/mixed/1", public, {}),
            ("acme/mixed/2", make_tarball(_save_mul(tmp / "mixed2", 5.0)), {"private": "1"}),
            ("team/model/1", make_tarball(_save_mul(tmp / "team", 7.0)), {}),
        ):
            resp = _put(server.url, name, archive, ADMIN, **params)
            assert resp.status_code == 201, resp.text
        yield server
    finally:
        server.stop()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _get(hub: InProcessHub, path: str, token: str | None, method: str = "GET", **kw):
    headers = {**_auth(token), **kw.pop("headers", {})}
    return requests.request(method, hub.url + path, headers=headers, timeout=30, **kw)


def _variables_blob(hub: InProcessHub, name: str) -> str:
    """The sha256 of the variables data file of ``name`` (unique to that model)."""
    record = _get(hub, f"/api/models/{name}", ADMIN).json()
    files = record["blobs"]["files"]
    return next(f["sha256"] for f in files if f["path"].startswith("variables/variables.data"))


# Every way to read a model, for a name: (method, path, extra request arguments).
def _reads(name: str) -> list[tuple[str, str, dict]]:
    archive = f"/{name}?tf-hub-format=compressed"
    return [
        ("GET", f"/{name}", {}),
        ("HEAD", f"/{name}", {}),
        ("GET", archive, {}),
        ("HEAD", archive, {}),
        ("GET", archive, {"headers": {"Range": "bytes=0-9"}}),
        ("GET", archive, {"headers": {"Accept": FILES}}),
        ("GET", f"/api/models/{name}", {}),
        ("HEAD", f"/api/models/{name}", {}),
    ]


def _same_as_missing(hub: InProcessHub, name: str, token: str | None) -> None:
    missing = name.replace("secret", "absent").replace("team/model", "team/absent")
    missing = missing.replace("mixed/2", "mixed/9")
    assert missing != name
    for method, path, kw in _reads(name):
        got = _get(hub, path, token, method, **kw)
        want = _get(hub, path.replace(name, missing), token, method, **kw)
        body = got.content.replace(name.encode(), missing.encode())
        assert (got.status_code, body) == (want.status_code, want.content), (method, path, kw)
        assert got.status_code in (404, 405), (method, path, got.status_code)
        assert got.headers.get("content-type") == want.headers.get("content-type")


PRIVATE = ["acme/secret/1", "acme/secret", "acme/mixed/2", "team/model/1", "team/model"]


@pytest.mark.parametrize("token", [None, OTHER, UNKNOWN])
def test_private_models_answer_like_missing_ones_without_a_grant(hub, token):
    for name in PRIVATE:
        _same_as_missing(hub, name, token)


def test_grants_are_per_namespace_and_per_model(hub):
    _same_as_missing(hub, "team/model/1", ACME)  # acme's token, team's private namespace
    _same_as_missing(hub, "acme/mixed/2", SECRET_ONLY)  # a grant for acme/secret only
    _same_as_missing(hub, "acme/secret/1", TEAM)
    readable = {
        ACME: ["acme/secret/1", "acme/secret", "acme/mixed/2"],
        SECRET_ONLY: ["acme/secret/1", "acme/secret"],
        TEAM: ["team/model/1", "team/model"],
        ADMIN: PRIVATE,  # a publish grant reads too
    }
    for token, names in readable.items():
        for name in names:
            for method, path, kw in _reads(name):
                resp = _get(hub, path, token, method, **kw)
                assert resp.status_code in (200, 206) or (method, resp.status_code) == (
                    "HEAD",
                    405,  # HEAD is answered like for a public model (see the next test)
                ), (token, method, path, resp.status_code)


def test_head_of_a_private_model_with_a_grant_matches_a_public_model(hub):
    public = _get(hub, "/acme/public/1", None, "HEAD").status_code
    assert _get(hub, "/acme/secret/1", ACME, "HEAD").status_code == public
    assert _get(hub, "/acme/secret/1", None, "HEAD").status_code == (
        _get(hub, "/acme/absent/1", None, "HEAD").status_code
    )


def test_archive_and_range_are_served_with_a_grant(hub):
    whole = _get(hub, "/acme/secret/1?tf-hub-format=compressed", ACME)
    assert whole.status_code == 200 and whole.content[:2] == b"\x1f\x8b"
    part = _get(
        hub, "/acme/secret/1?tf-hub-format=compressed", ACME, headers={"Range": "bytes=2-9"}
    )
    assert part.status_code == 206 and part.content == whole.content[2:10]
    record = _get(hub, "/api/models/acme/secret/1", ACME).json()
    assert record["private"] is True
    assert hashlib.sha256(whole.content).hexdigest() == record["archive"]["sha256"]


def test_blobs_referenced_only_by_private_versions_are_hidden(hub):
    for name, reader in (("acme/secret/1", ACME), ("acme/mixed/2", ACME), ("team/model/1", TEAM)):
        sha = _variables_blob(hub, name)
        absent = hashlib.sha256(name.encode()).hexdigest()
        for token in (None, OTHER, UNKNOWN):
            for kw in ({}, {"headers": {"Range": "bytes=0-3"}}):
                got = _get(hub, f"/api/blobs/{sha}", token, **kw)
                want = _get(hub, f"/api/blobs/{absent}", token, **kw)
                assert got.status_code == want.status_code == 404
                assert got.content.replace(sha.encode(), absent.encode()) == want.content
        assert _get(hub, f"/api/blobs/{sha}", reader).status_code == 200
    # A file that a public version holds too stays public.
    manifest = _get(hub, "/acme/public/1?tf-hub-format=compressed", None, headers={"Accept": FILES})
    for f in manifest.json()["files"]:
        assert _get(hub, f["url"], None).status_code == 200


def test_search_and_catalog_show_only_readable_models(hub):
    def names(token, **params):
        resp = _get(hub, "/api/models", token, params=params)
        assert resp.status_code == 200
        return {(m["publisher"], m["model"]): m["versions"] for m in resp.json()}

    anonymous = names(None)
    assert anonymous == {("acme", "public"): [1]}  # acme/mixed's latest is private
    assert names(None, q="secret") == {} and names(None, publisher="team") == {}
    assert names(OTHER) == anonymous
    assert names(ACME) == {
        ("acme", "public"): [1],
        ("acme", "secret"): [1],
        ("acme", "mixed"): [1, 2],
    }
    assert set(names(TEAM)) == {("acme", "public"), ("team", "model")}
    assert names(SECRET_ONLY, q="secret") == {("acme", "secret"): [1]}
    page = _get(hub, "/", None).text
    assert "acme/public" in page
    for hidden in ("secret", "team", "mixed"):
        assert hidden not in page, hidden
    assert "team" not in _get(hub, "/", OTHER, params={"publisher": "team"}).text
    assert "acme/secret" in _get(hub, "/", ACME).text


def test_version_lists_hide_private_versions(hub):
    anonymous = _get(hub, "/api/models/acme/mixed", None).json()
    assert anonymous["versions"] == [1] and anonymous["latest"]["version"] == 1
    assert "private" not in anonymous["latest"]
    granted = _get(hub, "/api/models/acme/mixed", ACME).json()
    assert granted["versions"] == [1, 2] and granted["latest"]["version"] == 2
    page = _get(hub, "/acme/mixed", None).text
    assert "acme/mixed/1" in page and "acme/mixed/2" not in page
    assert "acme/mixed/2" in _get(hub, "/acme/mixed", ACME).text
    # The unversioned archive is the latest version this request may read.
    latest = _get(hub, "/acme/mixed?tf-hub-format=compressed", None)
    v1 = _get(hub, "/acme/mixed/1?tf-hub-format=compressed", None)
    assert latest.status_code == 200 and latest.content == v1.content


def test_publishing_needs_a_publish_grant_and_rejects_bad_private_flags(hub, tmp_path):
    archive = b"\x1f\x8b not even read"
    assert _put(hub.url, "acme/x/1", archive, ACME).status_code == 403  # read-only grant
    assert _put(hub.url, "acme/x/1", archive, UNKNOWN).status_code == 401
    bad = _put(hub.url, "other/x/1", archive, OTHER, private="maybe")
    assert bad.status_code == 400 and "private" in bad.json()["error"]
    assert _get(hub, "/api/models/other/x/1", ADMIN).status_code == 404
