"""The ``provenance`` of a mirrored version: sent in the publish POST by a token holder, checked
for shape and size by the hub, stored in the record and shown by the API (a real
hub server, in this process), or written directly when publishing into a storage root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.helpers import tar_gz
from tests.helpers.hub import TOKEN, InProcessHub
from tfhub.server.client import fetch_record, pack_model, publish_to_root, publish_to_server
from tfhub.server.provenance import make_provenance

SHA = "ab" * 32


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with InProcessHub(tmp_path_factory.mktemp("hub")) as srv:
        yield srv


@pytest.fixture(scope="module")
def mul(tmp_path_factory) -> Path:
    from tests.helpers.models import save_mul

    return save_mul(tmp_path_factory.mktemp("models") / "mul")


@pytest.fixture(scope="module")
def archive(mul, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("archive") / "m.tar.gz"
    return pack_model(mul, out).read_bytes()


def _post(hub, name, archive, provenance, token=TOKEN):
    files = {"model": ("m.tar.gz", archive, "application/gzip"), "provenance": (None, provenance)}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{hub.url}/api/models/{name}", files=files, headers=headers, timeout=60)


def test_provenance_is_stored_and_shown_by_the_api(hub, mul, monkeypatch):
    monkeypatch.setenv("TFHUB_TOKEN", TOKEN)
    prov = make_provenance(
        "https://tfhub.dev/google/mul/1", sha256=SHA, size=123, license="apache-2.0", docs="# M"
    )
    record = publish_to_server(mul, "google/mul/1", server=hub.url, provenance=prov)
    assert record["provenance"] == prov
    shown = requests.get(f"{hub.url}/api/models/google/mul/1", timeout=10).json()
    assert shown["provenance"] == {
        "source": "https://tfhub.dev/google/mul/1",
        "sha256": SHA,
        "size": 123,
        "fetched": prov["fetched"],
        "license": "apache-2.0",
        "docs": "# M",
    }
    assert fetch_record(hub.url, "google/mul/1")["provenance"] == prov
    assert fetch_record(hub.url, "google/mul/2") is None
    stored = json.loads((Path(hub.root) / "google/mul/1/meta.json").read_text())
    assert stored["provenance"] == prov


def test_records_without_provenance_stay_valid(hub, mul, monkeypatch):
    monkeypatch.setenv("TFHUB_TOKEN", TOKEN)
    record = publish_to_server(mul, "plain/mul/1", server=hub.url)
    assert "provenance" not in record
    assert requests.get(f"{hub.url}/api/models/plain/mul", timeout=10).json()["versions"] == [1]


GOOD = {"source": "https://x/p/m/1", "fetched": "2026-01-31T12:00:00+00:00"}


@pytest.mark.parametrize(
    ("value", "status", "says"),
    [
        ("not json", 422, "not JSON"),
        (json.dumps([1]), 422, "not a JSON object"),
        (json.dumps({**GOOD, "owner": "me"}), 422, "'owner'"),
        (json.dumps({**GOOD, "source": ""}), 422, "source"),
        (json.dumps({**GOOD, "sha256": "AB" * 32}), 422, "sha256"),
        (json.dumps({**GOOD, "size": -1}), 422, "size"),
        (json.dumps({**GOOD, "size": True}), 422, "size"),
        (json.dumps({**GOOD, "fetched": "2026-01-31T12:00:00+02:00"}), 422, "fetched"),
        (json.dumps({**GOOD, "fetched": "yesterday"}), 422, "fetched"),
        (json.dumps({**GOOD, "license": 3}), 422, "license"),
        (json.dumps({**GOOD, "docs": "x" * (1 << 20)}), 413, "provenance field exceeds"),
    ],
)
def test_malformed_provenance_is_refused_and_nothing_is_stored(hub, archive, value, status, says):
    resp = _post(hub, "bad/prov/1", archive, value)
    assert resp.status_code == status, resp.text
    assert says in resp.json()["error"]
    assert not (Path(hub.root) / "bad").exists()
    assert requests.get(f"{hub.url}/api/models/bad/prov/1", timeout=10).status_code == 404


def test_only_a_token_holder_sets_provenance(hub, archive):
    resp = _post(hub, "anon/prov/1", archive, json.dumps(GOOD), token=None)
    assert resp.status_code == 401
    resp = _post(hub, "anon/prov/1", archive, json.dumps(GOOD), token="wrong")
    assert resp.status_code == 401
    assert not (Path(hub.root) / "anon").exists()


def test_publishing_into_a_root_records_provenance(mul, tmp_path):
    prov = make_provenance("https://hub.example/p/m/3", size=5)
    record = publish_to_root(mul, "p/m/3", root=str(tmp_path), provenance=prov)
    assert record["provenance"] == prov
    stored = json.loads((tmp_path / "p/m/3/meta.json").read_text())
    assert stored["provenance"]["source"] == "https://hub.example/p/m/3"
    assert stored["provenance"]["sha256"] is None


def test_tar_gz_helper_archives_are_not_models(hub):
    """A provenance field does not make an invalid upload acceptable."""
    resp = _post(hub, "junk/prov/1", tar_gz({"a.txt": b"x"}), json.dumps(GOOD))
    assert resp.status_code == 422
    assert not (Path(hub.root) / "junk").exists()


def test_pulling_from_a_hub_records_what_its_api_says(hub, mul, tmp_path, monkeypatch, capsys):
    """A tfhub hub as the upstream: its API gives the archive's sha256 and size, the license
    and the docs; a re-run with the same upstream archive is skipped without a download."""
    from tests.helpers.hub import DOCS
    from tfhub.cli import main

    monkeypatch.setenv("TFHUB_TOKEN", TOKEN)
    upstream = publish_to_server(mul, "docs/mul/1", server=hub.url, docs=DOCS)
    root = tmp_path / "mirror"
    handle = f"{hub.url}/docs/mul/1"
    assert main(["mirror", "pull", handle, "--root", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 mirrored, 0 skipped, 0 failed"
    prov = json.loads((root / "docs/mul/1/meta.json").read_text())["provenance"]
    assert prov["source"] == handle
    assert prov["sha256"] == upstream["archive"]["sha256"]
    assert prov["size"] == upstream["archive"]["size"]
    assert prov["license"] == "mit"
    assert "## Overview" in prov["docs"] and "It is *tiny*" in prov["docs"]
    mirrored = json.loads((root / "docs/mul/1/meta.json").read_text())["blobs"]["files"]
    assert mirrored == upstream["blobs"]["files"]

    assert main(["mirror", "pull", handle, "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "already mirrored (same archive)" in out
    assert out.splitlines()[-1] == "0 mirrored, 1 skipped, 0 failed"
