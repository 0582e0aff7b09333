"""The catalog's JSON API and page over the database, in process (records written with the
publish path's storage calls, no TensorFlow): pages and their cap, filters, sorts, the
OpenAPI description, and which downloads count."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers.records import docs_of, write_record
from tfhub import protocol
from tfhub.server.app import create_app
from tfhub.server.storage import LocalStorage


@pytest.fixture()
def client(tmp_path):
    storage = LocalStorage(tmp_path / "hub")
    for i in range(30):
        docs = docs_of(f"Model {i}", f"Number {i}.", license="mit" if i % 3 else "apache-2.0")
        write_record(storage, f"p{i % 2}/m{i:02d}/1", docs=docs, payload=b"x" * (1000 + i))
    write_record(storage, "p0/m00/2", docs=docs_of("Model 0", "Zero, again.", license="mit"))
    with TestClient(create_app(str(tmp_path / "hub"))) as c:
        yield c


def test_search_api_pages_filters_and_openapi(client):
    first = client.get("/api/models", params={"per_page": 7}).json()
    assert first["total"] == 30 and first["pages"] == 5 and len(first["items"]) == 7
    assert first["items"][0]["handle"] == "p0/m00/2"
    assert first["items"][0]["versions"] == [1, 2] and first["items"][0]["latest_version"] == 2
    assert first["items"][1]["size"] == 100 and first["items"][1]["downloads"] == 0
    last = client.get("/api/models", params={"per_page": 7, "page": 5}).json()
    assert [m["handle"] for m in last["items"]] == ["p1/m27/1", "p1/m29/1"]
    assert client.get("/api/models", params={"per_page": 101}).status_code == 422
    assert client.get("/api/models", params={"sort": "random"}).status_code == 422
    assert client.get("/api/models", params={"page": 0}).status_code == 422
    mit = client.get("/api/models", params={"license": "mit", "publisher": "p1"}).json()
    assert mit["total"] == 10 and {m["publisher"] for m in mit["items"]} == {"p1"}
    assert mit["facets"]["license"] == [{"value": "mit", "count": 10}]
    assert client.get("/api/models", params={"q": "again"}).json()["total"] == 1
    spec = client.get("/openapi.json").json()
    listing = spec["paths"]["/api/models"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "q", "publisher", "format", "module_type", "license", "language", "dataset",
        "architecture", "sort", "page", "per_page",
    }  # fmt: skip
    ok = listing["responses"]["200"]["content"]["application/json"]
    assert ok["example"]["items"][0]["downloads"] == 1234
    assert ok["schema"]["$ref"].endswith("/SearchPage")
    html = client.get("/", params={"q": "again"}).text
    assert "p0/m00" in html and "p1/m01" not in html
    # the facets count the matches: one publisher left, with its count
    assert "data-facet='publisher' data-value='p0'>p0</a> <span class='n'>1</span>" in html
    assert "data-value='p1'" not in html
    second = client.get("/", params={"sort": "name", "page": 2}).text  # 20 a page
    assert "Page 2 of 2" in second and "p1/m29" in second and "p0/m00" not in second


def test_which_downloads_count(client):
    url = f"/p1/m01/1?{protocol.FORMAT_PARAM}=compressed"
    whole = client.get(url)
    assert whole.status_code == 200 and len(whole.content) == 1001  # counts
    assert client.get(url, headers={"Range": "bytes=0-99"}).status_code == 206  # not the end
    assert client.get(url, headers={"Range": "bytes=100-"}).status_code == 206  # resumed: counts
    assert client.get(url, headers={"Range": "bytes=-1"}).status_code == 206  # the end: counts
    assert client.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    latest = f"/p1/m01?{protocol.FORMAT_PARAM}=compressed"
    client.get(latest, headers={"Accept": protocol.FILES_MEDIA_TYPE})  # the fast path: counts
    client.app.state.catalog.downloads_counter.close()  # what shutdown does
    model = client.get("/api/models/p1/m01").json()
    assert model["downloads"]["total"] == 4 and model["downloads"]["by_version"] == {"1": 4}
    assert model["downloads"]["last_30_days"] == 4 and len(model["downloads"]["by_day"]) == 1
    top = client.get("/api/models", params={"sort": "downloads", "per_page": 1}).json()
    assert top["items"][0]["handle"] == "p1/m01/1" and top["items"][0]["downloads"] == 4
