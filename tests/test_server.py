"""The hub server as a real process (and in this process, for the tests that publish on a hub
of their own): hosting protocol, publishing, pages, JSON API, CLI."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import requests
import tensorflow_hub  # a test dependency (the peer client): a missing one fails, never skips

import tfhub as hub
from tests.helpers import python_env
from tests.helpers.hub import DOCS, TOKEN, HubServer, InProcessHub, publish, tree
from tfhub.testing import make_tarball

UPLOAD_LIMIT = {"TFHUB_MAX_UPLOAD_BYTES": "400000"}


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory, models):
    """One `tfhub serve` for the tests that read or are refused (none adds a version), with
    test/mul/1 (with DOCS) and other/dict/1 published up front; ``hub_server.bodies`` holds the
    archives as uploaded."""
    with HubServer(str(tmp_path_factory.mktemp("hub") / "store"), env=UPLOAD_LIMIT) as srv:
        srv.bodies = {
            "test/mul/1": make_tarball(models["mul"]),
            "other/dict/1": make_tarball(models["dict"]),
        }
        assert (
            publish(srv.url, "test/mul/1", srv.bodies["test/mul/1"], docs=DOCS).status_code == 201
        )
        assert publish(srv.url, "other/dict/1", srv.bodies["other/dict/1"]).status_code == 201
        yield srv


@pytest.fixture()
def new_hub_server(tmp_path):
    """A hub of its own (in this process: these tests are not about the server's process), on
    an empty store at tmp_path/store, for tests that publish."""
    limit = int(UPLOAD_LIMIT["TFHUB_MAX_UPLOAD_BYTES"])
    with InProcessHub(tmp_path / "store", max_upload_bytes=limit) as srv:
        yield srv


def test_publish_then_load_by_url_with_our_client_and_tensorflow_hub(
    new_hub_server, models, tmp_path, monkeypatch
):
    resp = publish(new_hub_server.url, "test/mul/1", make_tarball(models["mul"]), docs=DOCS)
    assert resp.status_code == 201, resp.text
    record = resp.json()
    assert record["format"] == "saved_model_2" and record["version"] == 1
    sigs = record["info"]["variants"][0]["signatures"]["serving_default"]
    assert sigs["inputs"]["inputs"]["dtype"] == "float32"
    obj = hub.load(f"{new_hub_server.url}/test/mul/1")
    np.testing.assert_allclose(obj(np.float32(3.0)), 6.0)
    assert (
        publish(new_hub_server.url, "test/mul/2", make_tarball(models["flag"])).status_code == 201
    )
    latest = hub.resolve(f"{new_hub_server.url}/test/mul")  # unversioned → latest (v2)
    assert os.path.isfile(os.path.join(latest, "saved_model.pb"))
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "their-cache"))
    assert float(tensorflow_hub.load(f"{new_hub_server.url}/test/mul/1")(3.0)) == 6.0


def test_archive_headers_ranges_and_etag(hub_server):
    body = hub_server.bodies["test/mul/1"]
    url = f"{hub_server.url}/test/mul/1?tf-hub-format=compressed"
    full = requests.get(url, timeout=30)
    assert full.status_code == 200 and full.content == body
    sha = hashlib.sha256(body).hexdigest()
    assert full.headers["ETag"] == f'"{sha}"'
    assert full.headers["X-Tfhub-Sha256"] == sha
    assert full.headers["Digest"] == "sha-256=" + base64.b64encode(bytes.fromhex(sha)).decode()
    assert full.headers["Content-Length"] == str(len(body))
    assert full.headers["Accept-Ranges"] == "bytes"
    assert "immutable" in full.headers["Cache-Control"]
    part = requests.get(url, headers={"Range": "bytes=10-109"}, timeout=30)
    assert part.status_code == 206 and part.content == body[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(body)}"
    tail = requests.get(url, headers={"Range": "bytes=-50"}, timeout=30)
    assert tail.content == body[-50:]
    assert (
        requests.get(url, headers={"Range": f"bytes={len(body)}-"}, timeout=30).status_code == 416
    )
    assert requests.get(url, headers={"If-None-Match": f'"{sha}"'}, timeout=30).status_code == 304
    unversioned = requests.get(f"{hub_server.url}/test/mul?tf-hub-format=compressed", timeout=30)
    assert unversioned.content == body and unversioned.headers["Cache-Control"] == "no-cache"


def test_uncompressed_format_is_refused_clearly(hub_server, monkeypatch):
    resp = requests.get(f"{hub_server.url}/test/mul/1?tf-hub-format=uncompressed", timeout=30)
    assert resp.status_code == 406 and "compressed only" in resp.text
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    with pytest.raises(hub.ProtocolError, match="received code 406"):
        hub.resolve(f"{hub_server.url}/test/mul/1")


def test_versions_are_immutable(hub_server, models):
    before = tree(Path(hub_server.root))
    again = publish(hub_server.url, "test/mul/1", make_tarball(models["flag"]))
    assert again.status_code == 409 and "immutable" in again.json()["error"]
    assert tree(Path(hub_server.root)) == before


def test_concurrent_publishes_of_one_version(new_hub_server, models, tmp_path):
    bodies = [make_tarball(models["mul"]), make_tarball(models["flag"])] * 2
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(
            r.status_code
            for r in pool.map(lambda b: publish(new_hub_server.url, "test/race/1", b), bodies)
        )
    assert statuses == [201, 409, 409, 409]
    archives = [p for p in (tmp_path / "store").rglob("*.tar.gz")]
    assert len(archives) == 1  # the losers removed their own archives


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("Bad_Pub/m/1", 400, "Invalid publisher"),
        ("test/m/0", 400, "Invalid version"),
        ("test/m", 400, "a version is needed"),
        ("test/%2e%2e/etc/1", 400, "Invalid model name"),  # requests would fold a raw ..
        ("test/m%20x/1", 400, "Invalid model name"),
        ("test/a/2024/1", 400, "only digits"),
        ("test/.hidden/1", 400, "may not start with '.'"),
    ],
)
def test_bad_names(hub_server, models, name, status, message):
    resp = publish(hub_server.url, name, make_tarball(models["mul"]))
    assert resp.status_code == status and message in resp.json()["error"]


def test_auth(tmp_path, models, monkeypatch):
    """A token file's grants (read as `tfhub serve` reads them: from the environment)."""
    from tfhub.server.access import Tokens

    token_file = tmp_path / "tokens"
    token_file.write_text("# token publishers\nalice-token alice\nroot-token *\n")
    monkeypatch.setenv("TFHUB_TOKEN_FILE", str(token_file))
    srv = InProcessHub(tmp_path / "store", Tokens.from_env())
    try:
        body = make_tarball(models["mul"])
        assert publish(srv.url, "alice/m/1", body, token=None).status_code == 401
        assert publish(srv.url, "alice/m/1", body, token="wrong").status_code == 401
        denied = publish(srv.url, "bob/m/1", body, token="alice-token")
        assert denied.status_code == 403 and "'bob'" in denied.json()["error"]
        assert publish(srv.url, "alice/m/1", body, token="alice-token").status_code == 201
        assert publish(srv.url, "bob/m/1", body, token="root-token").status_code == 201
    finally:
        srv.stop()
    assert not list((tmp_path / "store").glob("bob/m/1/*.tar.gz"))[1:]  # only one archive


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (os.urandom(500_000), 413, "exceeds the limit"),
        (b"", 400, "empty"),
        (b"not a tarball" * 100, 422, "not a valid model archive"),
        (_tar([("notes.txt", b"hello")]), 422, "holds no saved_model.pb"),
        (_tar([("saved_model.pb", b"garbage bytes")]), 422, "not an acceptable model"),
        (_tar([("saved_model.pb", b"x"), ("../escape", b"x")]), 422, "outside the model"),
    ],
)
def test_bad_uploads_change_nothing(hub_server, body, status, message):
    before = tree(Path(hub_server.root))
    resp = publish(hub_server.url, "test/bad/1", body)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]
    assert tree(Path(hub_server.root)) == before
    assert requests.get(f"{hub_server.url}/api/models/test/bad/1", timeout=30).status_code == 404


def test_malformed_multipart_is_a_400(hub_server):
    resp = requests.post(
        f"{hub_server.url}/api/models/test/m/1",
        data=b"garbage",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "multipart/form-data; boundary=xyz",
        },
        timeout=30,
    )
    assert resp.status_code == 400, resp.text


def test_bad_docs_are_refused(hub_server, models):
    resp = publish(hub_server.url, "test/docs/1", make_tarball(models["mul"]), docs="no title\n")
    assert resp.status_code == 422 and "Title" in resp.json()["error"]
    resp = publish(
        hub_server.url, "test/docs/1", make_tarball(models["mul"]), docs="# T\n<!-- bogus: 1 -->\n"
    )
    assert resp.status_code == 422 and "unknown metadata key 'bogus'" in resp.json()["error"]


def test_json_api_pages_and_openapi(hub_server):
    everything = requests.get(f"{hub_server.url}/api/models", timeout=30).json()["items"]
    assert [(m["publisher"], m["model"]) for m in everything] == [
        ("other", "dict"),
        ("test", "mul"),
    ]
    found = requests.get(f"{hub_server.url}/api/models", params={"q": "multiplies"}, timeout=30)
    assert [m["model"] for m in found.json()["items"]] == ["mul"]
    by_type = requests.get(
        f"{hub_server.url}/api/models", params={"module_type": "text-embedding"}, timeout=30
    ).json()["items"]
    assert [m["model"] for m in by_type] == ["mul"]
    model = requests.get(f"{hub_server.url}/api/models/test/mul", timeout=30).json()
    assert model["versions"] == [1] and model["latest"]["docs"]["title"] == "Module test/mul/1"
    assert requests.get(f"{hub_server.url}/api/models/test/none", timeout=30).status_code == 404
    page = requests.get(f"{hub_server.url}/test/mul/1", timeout=30)
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for expected in (
        "Multiplies its input",
        f"hub.KerasLayer(&quot;{hub_server.url}/test/mul/1",
        "serving_default",
        "float32",
        "mit",
        "TF2 SavedModel",
        "<em>tiny</em>",
    ):
        assert expected in html, expected
    assert "<script>alert(1)</script>" not in html  # docs HTML is escaped
    spec = requests.get(f"{hub_server.url}/openapi.json", timeout=30).json()
    assert "/api/models" in spec["paths"] and "put" in spec["paths"]["/api/models/{path}"]
    assert requests.get(f"{hub_server.url}/nobody/nothing/1", timeout=30).status_code == 404
    logs = hub_server.wait_for_log("GET /nobody/nothing/1 404")
    assert "tfhub.server.access: POST /api/models/test/mul/1 201" in logs
    assert "GET /nobody/nothing/1 404" in logs


def test_cli_publish_download_inspect_and_cache(new_hub_server, models, tmp_path):
    env = python_env({"TFHUB_TOKEN": TOKEN})
    docs = tmp_path / "docs.md"
    docs.write_text(DOCS)
    cmd = [sys.executable, "-m", "tfhub.cli"]
    out = subprocess.run(
        [*cmd, "publish", str(models["tf1"]), "test/tf1/1", "--server", new_hub_server.url,
         "--docs", str(docs)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "published test/tf1/1 (hub" in out.stdout
    again = subprocess.run(
        [*cmd, "publish", str(models["tf1"]), "test/tf1/1", "--server", new_hub_server.url],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert again.returncode == 4 and "409" in again.stderr  # the server refused
    url = f"{new_hub_server.url}/test/tf1/1"
    path = subprocess.run(
        [*cmd, "download", url], capture_output=True, text=True, env=env, timeout=300
    ).stdout.strip()
    assert os.path.isfile(os.path.join(path, "tfhub_module.pb"))
    shown = subprocess.run(
        [*cmd, "inspect", url], capture_output=True, text=True, env=env, timeout=300
    ).stdout
    assert "format: hub" in shown and "graph variant tags=['train']" in shown
    assert "input  default: float32 [None, 2] dense" in shown
    listed = subprocess.run([*cmd, "cache", "list"], capture_output=True, text=True, env=env)
    assert url in listed.stdout
    removed = subprocess.run([*cmd, "cache", "rm", url], capture_output=True, text=True, env=env)
    assert removed.returncode == 0 and not os.path.exists(path)


def test_publish_to_root_and_static_mirror(models, tmp_path, monkeypatch, capsys):
    """`tfhub publish --root` and `tfhub mirror export` (in this process: the CLI's process is
    test_cli_user's business), then tensorflow_hub loads from the static files."""
    from tfhub import cli

    store, www = str(tmp_path / "store"), str(tmp_path / "www")
    for version, model in ((1, "mul"), (2, "flag")):
        assert cli.main(["publish", str(models[model]), f"test/m/{version}", "--root", store]) == 0
    capsys.readouterr()
    assert cli.main(["mirror", "export", store, www]) == 0
    assert "wrote 2 model versions" in capsys.readouterr().out
    static = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", www],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = static.stdout.readline()
        port = int(line.split("port ")[1].split(" ")[0])
        monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "their-cache"))
        assert float(tensorflow_hub.load(f"http://127.0.0.1:{port}/test/m/1")(3.0)) == 6.0
        latest = tensorflow_hub.resolve(f"http://127.0.0.1:{port}/test/m")
        assert sorted(os.listdir(latest)) == sorted(os.listdir(models["flag"]))
    finally:
        static.terminate()
        static.wait(timeout=10)
