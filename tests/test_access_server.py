"""Private models on the hub: without a read grant, a private model answers exactly like a
model that does not exist, on every route (page, API, search, archive, manifest, blob, HEAD,
Range); with one, it is served. The models are published once through a real `tfhub serve`
process with a hashed token file; the routes are then read through in-process hubs (uvicorn
in a thread) over the same storage."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tensorflow_hub  # the peer client, a test dependency: a missing one fails, never skips

from tests.helpers.hub import HubServer, InProcessHub
from tests.helpers.models import MyMulModel
from tfhub import protocol
from tfhub.cli import main
from tfhub.server.publish import Tokens  # where it was before access.py
from tfhub.testing import make_tarball


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


ADMIN = "admin-token-0123456789abcdef"
WRITER = "acme-writer-0123456789abcdef"
LEGACY = "old-plaintext-0123456789abcdef"
ACME = "acme-reader-0123456789abcdef"
SECRET_ONLY = "secret-reader-0123456789abcdef"
TEAM = "team-reader-0123456789abcdef"
OTHER = "other-reader-0123456789abcdef"
UNKNOWN = "nobody-knows-0123456789abcdef"
TOKEN_FILE = f"""# hashed tokens (ADMIN is TFHUB_PUBLISH_TOKEN), and an old plaintext line
{hash_token(WRITER)} publish=acme
{hash_token(ACME)} read=acme
{hash_token(SECRET_ONLY)} read=acme/secret
{hash_token(TEAM)} read=team
{hash_token(OTHER)} read=other publish=other
{LEGACY} bob
"""
FILES = protocol.FILES_MEDIA_TYPE


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
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Tokens, str]]:
    """A storage root with acme/public/1, acme/secret/1 (private), acme/mixed/1 and
    acme/mixed/2 (private), published through `tfhub serve`; the tokens; the server's log."""
    tmp = tmp_path_factory.mktemp("access")
    (tmp / "tokens").write_text(TOKEN_FILE)
    env = {"TFHUB_TOKEN_FILE": str(tmp / "tokens"), "TFHUB_PUBLISH_TOKEN": ADMIN}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        tokens = Tokens.from_env()
    with HubServer(str(tmp / "store"), env=env) as server:  # PUT ?private=, the CLI's field
        public = make_tarball(_save_mul(tmp / "public", 2.0))
        for name in ("acme/public/1", "acme/mixed/1"):
            resp = _put(server.url, name, public, ADMIN)
            assert resp.status_code == 201, resp.text
        mixed2 = make_tarball(_save_mul(tmp / "mixed2", 5.0))
        resp = _put(server.url, "acme/mixed/2", mixed2, ADMIN, private="1")
        assert resp.status_code == 201, resp.text
        with pytest.MonkeyPatch.context() as mp:  # the CLI (multipart), a hashed token
            mp.setenv("TFHUB_TOKEN", WRITER)
            secret = str(_save_mul(tmp / "secret", 3.0))
            assert (
                main(["publish", secret, "acme/secret/1", "--server", server.url, "--private"]) == 0
            )
        log = server.wait_for_log("plaintext token")
    yield tmp / "store", tokens, log


@pytest.fixture(scope="module")
def hub(store: tuple[Path, Tokens, str]) -> Iterator[InProcessHub]:
    server = InProcessHub(*store[:2])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_acme(store: tuple[Path, Tokens, str]) -> Iterator[InProcessHub]:
    """The same storage served with acme a private namespace (TFHUB_PRIVATE_NAMESPACES)."""
    root, tokens, _ = store
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TFHUB_PRIVATE_NAMESPACES", "acme,team")
        private = Tokens.from_env().private_namespaces
    server = InProcessHub(root, dataclasses.replace(tokens, private_namespaces=private))
    yield server
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


def _absent(name: str) -> str:
    """A name like ``name`` that was never published (same publisher and version)."""
    publisher, _, rest = name.partition("/")
    version = rest.rsplit("/", 1)[1] if rest.rsplit("/", 1)[-1].isdigit() else None
    return f"{publisher}/absent" + (f"/{version}" if version else "")


def _same_as_missing(hub: InProcessHub, name: str, token: str | None) -> None:
    missing = _absent(name)
    for method, path, kw in _reads(name):
        got = _get(hub, path, token, method, **kw)
        want = _get(hub, path.replace(name, missing), token, method, **kw)
        body = got.content.replace(name.encode(), missing.encode())
        assert (got.status_code, body) == (want.status_code, want.content), (method, path, kw)
        assert got.status_code in (404, 405), (method, path, got.status_code)
        assert got.headers.get("content-type") == want.headers.get("content-type")


def _readable(hub: InProcessHub, name: str, token: str | None) -> None:
    public = _get(hub, "/", None, "HEAD").status_code  # HEAD: as for the public catalog page
    for method, path, kw in _reads(name):
        resp = _get(hub, path, token, method, **kw)
        ok = resp.status_code == public if method == "HEAD" else resp.status_code in (200, 206)
        assert ok, (token, method, path, resp.status_code)


PRIVATE = ["acme/secret/1", "acme/secret", "acme/mixed/2"]
ACME_ALL = ["acme/public/1", "acme/public", "acme/mixed/1", "acme/mixed", *PRIVATE]


@pytest.mark.parametrize("token", [None, OTHER, UNKNOWN])
def test_private_models_answer_like_missing_ones_without_a_grant(hub, token):
    for name in PRIVATE:
        _same_as_missing(hub, name, token)
    for name in ("acme/public/1", "acme/mixed/1", "acme/mixed"):
        _readable(hub, name, token)


def test_grants_are_per_model_and_a_publish_grant_reads(hub):
    _same_as_missing(hub, "acme/mixed/2", SECRET_ONLY)  # a grant for acme/secret only
    _same_as_missing(hub, "acme/secret/1", TEAM)
    for token, names in {
        ACME: PRIVATE,
        SECRET_ONLY: ["acme/secret/1", "acme/secret"],
        ADMIN: PRIVATE,  # TFHUB_PUBLISH_TOKEN: publishes and reads everything
    }.items():
        for name in names:
            _readable(hub, name, token)


@pytest.mark.parametrize("token", [None, OTHER, TEAM, SECRET_ONLY])
def test_a_private_namespace_hides_every_model_of_it(private_acme, token):
    names = ACME_ALL if token != SECRET_ONLY else [n for n in ACME_ALL if "secret" not in n]
    for name in names:
        _same_as_missing(private_acme, name, token)

    # The same records as the grant holder sees; their download counts are left out of the
    # comparison: the other cases' downloads are written in the background (every second), so
    # a count may move between the two requests.
    def listed(query: str, who: str | None) -> list[dict]:
        items = _get(private_acme, f"/api/models{query}", who).json()["items"]
        return [{k: v for k, v in item.items() if k != "downloads"} for item in items]

    assert listed("", token) == ([] if token != SECRET_ONLY else listed("?q=secret", ACME))
    page = _get(private_acme, "/", token).text
    assert "acme/public" not in page and "acme/mixed" not in page
    assert ("value='acme'" in page) == (token == SECRET_ONLY)  # the publisher filter
    sha = _variables_blob(private_acme, "acme/public/1")  # also in acme/mixed/1: both private
    assert _get(private_acme, f"/api/blobs/{sha}", token).status_code == 404
    assert _get(private_acme, f"/api/blobs/{sha}", ACME).status_code == 200
    for name in ACME_ALL:
        _readable(private_acme, name, ACME)


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
    for name in ("acme/secret/1", "acme/mixed/2"):
        sha = _variables_blob(hub, name)
        absent = hashlib.sha256(name.encode()).hexdigest()
        for token in (None, OTHER, UNKNOWN, TEAM):
            for kw in ({}, {"headers": {"Range": "bytes=0-3"}}):
                got = _get(hub, f"/api/blobs/{sha}", token, **kw)
                want = _get(hub, f"/api/blobs/{absent}", token, **kw)
                assert got.status_code == want.status_code == 404
                assert got.content.replace(sha.encode(), absent.encode()) == want.content
        assert _get(hub, f"/api/blobs/{sha}", ACME).status_code == 200
    # A file that a public version holds too stays public.
    manifest = _get(hub, "/acme/public/1?tf-hub-format=compressed", None, headers={"Accept": FILES})
    for f in manifest.json()["files"]:
        assert _get(hub, f["url"], None).status_code == 200


def test_search_and_catalog_show_only_readable_models(hub):
    def found(token, **params):
        resp = _get(hub, "/api/models", token, params=params)
        assert resp.status_code == 200
        return {f"{m['publisher']}/{m['model']}": m for m in resp.json()["items"]}

    anonymous = found(None)
    assert anonymous["acme/public"]["versions"] == [1] and "acme/secret" not in anonymous
    # acme/mixed's latest version is private: hidden, or shown as its latest public version.
    mixed = anonymous.get("acme/mixed")
    assert mixed is None or (mixed["versions"] == [1] and mixed["version"] == 1)
    assert found(None, q="secret") == {} and found(OTHER, q="secret") == {}
    assert found(OTHER).keys() == anonymous.keys()
    granted = found(ACME)
    assert granted.keys() == {"acme/public", "acme/secret", "acme/mixed"}
    assert granted["acme/mixed"]["versions"] == [1, 2]
    assert found(SECRET_ONLY, q="secret").keys() == {"acme/secret"}
    for token in (None, OTHER):
        page = _get(hub, "/", token).text
        assert "acme/public" in page and "secret" not in page
        searched = _get(hub, "/?q=secret", token).text.replace("secret", "nosuch")
        assert "acme/mixed/2" not in page and searched == _get(hub, "/?q=nosuch", token).text
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


def test_publishing_needs_a_publish_grant_and_rejects_bad_private_flags(hub):
    archive = b"\x1f\x8b not even read"
    assert _put(hub.url, "acme/x/1", archive, ACME).status_code == 403  # read-only grant
    assert _put(hub.url, "acme/x/1", archive, UNKNOWN).status_code == 401
    bad = _put(hub.url, "other/x/1", archive, OTHER, private="maybe")
    assert bad.status_code == 400 and "private" in bad.json()["error"]
    assert _get(hub, "/api/models/other/x/1", ADMIN).status_code == 404


@pytest.mark.parametrize("fast_path", ["1", "0"])
def test_the_tfhub_client_loads_a_private_model_with_its_token(hub, monkeypatch, fast_path):
    import tfhub

    monkeypatch.setenv("TFHUB_FAST_PATH", fast_path)
    monkeypatch.setenv("TFHUB_TOKEN", ACME)
    with pytest.raises(tfhub.RemoteNotFoundError):  # no TFHUB_TOKEN_ORIGINS: not sent
        tfhub.resolve(f"{hub.url}/acme/secret/1")
    monkeypatch.setenv("TFHUB_TOKEN_ORIGINS", hub.url)
    assert float(tfhub.load(f"{hub.url}/acme/secret/1")(2.0)) == 6.0
    assert float(tfhub.load(f"{hub.url}/acme/mixed")(2.0)) == 10.0  # latest: private v2
    monkeypatch.setenv("TFHUB_TOKEN", OTHER)  # another namespace's token
    with pytest.raises(tfhub.RemoteNotFoundError):
        tfhub.resolve(f"{hub.url}/acme/mixed/2")


def test_tensorflow_hub_loads_public_models_and_not_private_ones(hub):
    assert float(tensorflow_hub.load(f"{hub.url}/acme/public/1")(2.0)) == 4.0
    assert float(tensorflow_hub.load(f"{hub.url}/acme/mixed")(2.0)) == 4.0  # latest public: v1
    with pytest.raises(Exception, match="404"):
        tensorflow_hub.load(f"{hub.url}/acme/secret/1")


def test_shared_caches_may_not_keep_private_responses(hub, private_acme):
    """A private archive, manifest or blob served to a token holder says Cache-Control:
    private (a CDN or proxy must not hand it to the next, anonymous, reader)."""
    archive = "/acme/secret/1?tf-hub-format=compressed"
    secret_blob = f"/api/blobs/{_variables_blob(hub, 'acme/secret/1')}"
    for server, path in (
        (hub, archive),
        (hub, "/acme/mixed?tf-hub-format=compressed"),  # its latest is private
        (hub, secret_blob),
        (private_acme, "/acme/public/1?tf-hub-format=compressed"),
        (private_acme, f"/api/blobs/{_variables_blob(hub, 'acme/public/1')}"),
    ):
        for headers in ({}, {"Accept": FILES}, {"Range": "bytes=0-3"}):
            resp = _get(server, path, ACME, headers=headers)
            assert resp.status_code in (200, 206), (path, headers)
            cache = resp.headers["Cache-Control"]
            assert cache.startswith("private") and "public" not in cache, (path, headers, cache)
    public = _get(hub, "/acme/public/1?tf-hub-format=compressed", ACME)
    assert public.headers["Cache-Control"].startswith("public")


def test_the_hub_keeps_no_token_in_its_files_or_log(store, hub):
    root, _, log = store
    assert "tokens:7 holds a plaintext token" in log  # the old line is warned about
    stored = b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())
    assert stored.count(b'"private": true') == 2
    token_file = (root.parent / "tokens").read_text()
    for token in (ADMIN, WRITER, ACME, SECRET_ONLY, TEAM, OTHER, LEGACY):
        assert token.encode() not in stored and token not in log, token
        if token != LEGACY:
            assert token not in token_file
    # The old plaintext line still publishes for bob, and only for bob (403, not 401).
    assert _put(hub.url, "acme/x/1", b"x", LEGACY).status_code == 403
    assert _put(hub.url, "bob/x/1", b"x", LEGACY).status_code == 422  # known, and checked


def test_publish_takes_the_servers_token_from_the_client_token_file(
    hub, tmp_path, monkeypatch, capsys
):
    model = str(_save_mul(tmp_path / "m", 1.0))
    assert main(["publish", model, "acme/n/1", "--server", hub.url]) == 4
    assert "(401)" in capsys.readouterr().err  # no token
    (tmp_path / "mine").write_text(f"{hub.url} {ACME}\n")
    monkeypatch.setenv("TFHUB_CLIENT_TOKEN_FILE", str(tmp_path / "mine"))
    assert main(["publish", model, "acme/n/1", "--server", hub.url]) == 4
    assert "may not publish for publisher 'acme'" in capsys.readouterr().err  # 403: known


def test_a_static_mirror_leaves_private_versions_out(store, tmp_path, monkeypatch):
    from tfhub.server.mirror import export_mirror

    root = str(store[0])
    assert export_mirror(root, tmp_path / "out") == 2
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "acme/mixed/1",
        "acme/mixed/index.html",
        "acme/public/1",
        "acme/public/index.html",
    ]
    assert (tmp_path / "out/acme/mixed/index.html").read_bytes() == (
        tmp_path / "out/acme/mixed/1"
    ).read_bytes()
    monkeypatch.setenv("TFHUB_PRIVATE_NAMESPACES", "acme")
    assert export_mirror(root, tmp_path / "none") == 0
    assert not [p for p in (tmp_path / "none").rglob("*") if p.is_file()]
