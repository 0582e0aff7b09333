"""Two `tfhub serve` replicas on one PostgreSQL (and one storage): a version published on one
is searchable on the other within 2 s, and downloads through both add up, counted once per
completed download."""

from __future__ import annotations

import concurrent.futures
import time

import requests

from tests.helpers.hub import DOCS, HubServer, publish
from tests.helpers.postgres import postgres
from tfhub import protocol
from tfhub.testing import make_tarball


def _poll(check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_two_replicas_share_one_postgresql(tmp_path, models):
    root = str(tmp_path / "hub")
    with postgres() as url:
        env = {"TFHUB_DATABASE_URL": url, "TFHUB_CATALOG_RECONCILE_SECONDS": "0"}
        with HubServer(root, env) as a, HubServer(root, env) as b:
            assert requests.get(f"{b.url}/api/models", timeout=30).json()["total"] == 0
            assert publish(a.url, "test/mul/1", make_tarball(models["mul"]), docs=DOCS).ok
            published = time.monotonic()

            def found_on_b():
                got = requests.get(f"{b.url}/api/models", params={"q": "multipl"}, timeout=30)
                return [m["handle"] for m in got.json()["items"]]

            assert _poll(found_on_b, 2.0) == ["test/mul/1"]
            assert time.monotonic() - published <= 2.0
            facets = requests.get(f"{b.url}/api/models", timeout=30).json()["facets"]
            assert facets["license"] == [{"value": "mit", "count": 1}]

            archive = f"/test/mul/1?{protocol.FORMAT_PARAM}=compressed"
            size = len(requests.get(b.url + archive, timeout=30).content)  # counts: 1
            cut = requests.get(b.url + archive, headers={"Range": "bytes=0-9"}, timeout=30)
            assert cut.status_code == 206  # stops short of the end: not counted
            resumed = requests.get(b.url + archive, headers={"Range": "bytes=10-"}, timeout=30)
            assert resumed.status_code == 206 and len(resumed.content) == size - 10  # counts: 1
            manifest = requests.get(  # the fast path: one per manifest fetch
                f"{a.url}/test/mul?{protocol.FORMAT_PARAM}=compressed",
                headers={"Accept": protocol.FILES_MEDIA_TYPE},
                timeout=30,
            )
            assert manifest.headers["content-type"].startswith(protocol.FILES_MEDIA_TYPE)
            blob = manifest.json()["files"][0]["url"]
            assert requests.get(a.url + blob, timeout=30).ok  # a blob: not counted

            def download(i: int) -> int:
                server = (a, b)[i % 2]
                return len(requests.get(server.url + archive, timeout=60).content)

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                assert set(pool.map(download, range(16))) == {size}
            expected = 1 + 1 + 1 + 16

            def total_on_a():
                got = requests.get(f"{a.url}/api/models/test/mul", timeout=30).json()
                return got["downloads"] if got["downloads"]["total"] >= expected else None

            counts = _poll(total_on_a, 10.0)
            assert counts is not None and counts["total"] == expected
            assert counts["by_version"] == {"1": expected} and counts["last_30_days"] == expected
            time.sleep(1.5)  # nothing counted twice, later
            listed = requests.get(f"{b.url}/api/models", params={"sort": "downloads"}, timeout=30)
            assert listed.json()["items"][0]["downloads"] == expected
