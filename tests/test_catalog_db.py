"""The catalog database on SQLite and on a real PostgreSQL: migrations, search (ranking,
facets, sorts, pages), read scopes in SQL, reconcile/rebuild and batched download counts."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading

import psycopg
import pytest

from tests.helpers.postgres import postgres
from tests.helpers.records import docs_of, write_record
from tfhub.server.access import ReadScope
from tfhub.server.catalog import Catalog, ModelName
from tfhub.server.db.connection import Database
from tfhub.server.db.migrations import migrate
from tfhub.server.storage import LocalStorage

_names = itertools.count()


@pytest.fixture(scope="module")
def pg_server():
    with postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    server = request.getfixturevalue("pg_server")
    name = f"t{next(_names)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def _hub(tmp_path, db_url):
    storage = LocalStorage(tmp_path / "hub")
    return storage, Catalog(storage, database=db_url)


def test_migrations_are_idempotent_and_safe_when_started_together(db_url):
    databases = [Database(db_url) for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(migrate, databases))
    assert sorted(applied, key=len) == [[], [], [], [1]]  # exactly one start applied it
    assert migrate(databases[0]) == []
    with databases[0].connect() as conn:
        assert conn.all("SELECT version FROM catalog_migrations") == [(1,)]
        assert conn.one("SELECT seq FROM catalog_state") == (0,)
    for db in databases:
        db.close()


def test_search_ranks_filters_sorts_and_pages(tmp_path, db_url):
    storage, catalog = _hub(tmp_path, db_url)
    write_record(storage, "google/mobilenet/1", published_at="2026-01-03T00:00:00+00:00",
                 docs=docs_of("MobileNet", "Image features.", module_type="image-feature-vector",
                              license="apache-2.0", dataset="imagenet",
                              network_architecture="mobilenet-v2"))  # fmt: skip
    write_record(storage, "acme/resnet/1", published_at="2026-01-02T00:00:00+00:00",
                 docs=docs_of("ResNet", "Better than a mobilenet for servers.",
                              module_type="image-feature-vector", license="mit",
                              dataset="imagenet"))  # fmt: skip
    write_record(storage, "acme/bert/1", published_at="2026-01-05T00:00:00+00:00",
                 docs=docs_of("BERT", "Text encoder.", module_type="text-embedding",
                              license="mit", language=["en", "de"]))  # fmt: skip
    write_record(storage, "acme/bert/2", published_at="2026-01-06T00:00:00+00:00",
                 docs=docs_of("BERT", "Text encoder, v2.", module_type="text-embedding",
                              license="mit", language=["en", "de"]))  # fmt: skip
    for i in range(25):
        write_record(storage, f"bulk/m{i:02d}/1", fmt="hub")
    try:
        # Ranked: the model named so beats the one whose description mentions it; prefixes.
        found = catalog.search("mobile")
        assert [m["handle"] for m in found["items"]] == ["google/mobilenet/1", "acme/resnet/1"]
        assert catalog.search("encod")["items"][0]["versions"] == [1, 2]
        assert catalog.search("encod")["items"][0]["latest_version"] == 2
        assert catalog.search("imagenet mit")["total"] == 1  # every word must match
        assert catalog.search("Multiplies")["total"] == 0
        # Facets: counts over every match, not the page.
        everything = catalog.search(per_page=5)
        assert everything["total"] == 28 and everything["pages"] == 6
        assert len(everything["items"]) == 5
        facets = everything["facets"]
        assert {"value": "bulk", "count": 25} in facets["publisher"]
        assert facets["format"] == [{"value": "hub", "count": 25},
                                    {"value": "saved_model_2", "count": 3}]  # fmt: skip
        assert facets["license"] == [{"value": "mit", "count": 2},
                                     {"value": "apache-2.0", "count": 1}]  # fmt: skip
        assert facets["language"] == [{"value": "de", "count": 1}, {"value": "en", "count": 1}]
        images = catalog.search(module_type="image-feature-vector")
        assert images["total"] == 2 and images["facets"]["dataset"] == [
            {"value": "imagenet", "count": 2}
        ]
        assert catalog.search(filters={"license": "mit", "dataset": "imagenet"})["total"] == 1
        assert catalog.search(publisher="acme", fmt="hub")["total"] == 0
        # Sorts and pages.
        by_name = catalog.search(sort="name", per_page=3, page=1, publisher="acme")
        assert [m["model"] for m in by_name["items"]] == ["bert", "resnet"]
        recent = catalog.search(sort="recent", per_page=3)
        assert [m["model"] for m in recent["items"]] == ["bert", "mobilenet", "resnet"]
        second = catalog.search(sort="name", per_page=10, page=2)
        assert [m["model"] for m in second["items"]] == [f"m{i:02d}" for i in range(8, 18)]
        assert catalog.search(sort="name", per_page=10, page=9)["items"] == []
        for _ in range(3):
            catalog.count_download(ModelName("bulk", "m20", 1))
        catalog.count_download(ModelName("acme", "resnet", 1))
        catalog.downloads_counter.close()
        top = catalog.search(sort="downloads", per_page=2)["items"]
        assert [(m["model"], m["downloads"]) for m in top] == [("m20", 3), ("resnet", 1)]
        assert top[0]["size"] == 100
        with pytest.raises(ValueError, match="sort"):
            catalog.search(sort="random")
    finally:
        catalog.close()


def test_private_models_are_hidden_in_sql(tmp_path, db_url):
    storage, catalog = _hub(tmp_path, db_url)
    write_record(storage, "team/a/1", docs=docs_of("A", "public one", license="mit"))
    secret = write_record(storage, "team/a/2", private=True,
                          docs=docs_of("A", "secret two", license="custom"))  # fmt: skip
    write_record(storage, "lab/b/1", docs=docs_of("B", "in a private namespace"))
    write_record(storage, "open/c/1", docs=docs_of("C", "public", license="mit"))
    public, lab = ReadScope(private_namespaces=frozenset({"lab"})), ModelName("lab", "b")
    granted = ReadScope(private_namespaces=frozenset({"lab"}), grants=frozenset({"team/a"}))
    everything = ReadScope(private_namespaces=frozenset({"lab"}), grants=frozenset({"*"}))
    try:
        seen = catalog.search(scope=public)
        assert [(m["handle"], m["versions"]) for m in seen["items"]] == [
            ("open/c/1", [1]),
            ("team/a/1", [1]),
        ]
        assert seen["total"] == 2 and seen["facets"]["license"] == [{"value": "mit", "count": 2}]
        assert catalog.search("secret", scope=public)["total"] == 0
        assert catalog.search(scope=public, per_page=1)["pages"] == 2
        assert catalog.record(ModelName("team", "a"), public)["version"] == 1
        assert catalog.record(ModelName("team", "a", 2), public) is None
        assert catalog.versions(lab, public) == [] and catalog.record(lab, public) is None
        blob = secret["blobs"]["files"][0]["sha256"]
        assert catalog.blob(blob, public) is None and catalog.blob(blob, granted) is not None
        mine = catalog.search(scope=granted)
        assert [(m["handle"], m["versions"]) for m in mine["items"]] == [
            ("open/c/1", [1]),
            ("team/a/2", [1, 2]),
        ]
        assert catalog.search("secret", scope=granted)["total"] == 1
        assert catalog.search(scope=everything)["total"] == 3
        assert catalog.versions(lab, everything) == [1]
    finally:
        catalog.close()


def test_reconcile_and_rebuild_follow_the_storage(tmp_path, db_url):
    storage, catalog = _hub(tmp_path, db_url)
    write_record(storage, "a/one/1")
    try:
        assert catalog.search()["total"] == 1  # indexed at first use
        before = catalog.seq()
        write_record(storage, "a/two/1")  # written, never inserted: a crash before the insert
        assert catalog.search()["total"] == 1
        assert catalog.reconcile() == (1, 0) and catalog.seq() > before
        assert catalog.reconcile() == (0, 0)
        catalog.count_download(ModelName("a", "one", 1))
        catalog.downloads_counter.close()
        storage.delete("a/two/1/meta.json")
        assert catalog.reconcile() == (0, 1)
        assert catalog.rebuild() == 1
        assert [m["handle"] for m in catalog.search()["items"]] == ["a/one/1"]
        assert catalog.downloads(ModelName("a", "one"))["total"] == 1  # kept by the rebuild
    finally:
        catalog.close()


def test_download_counts_are_batched_and_exact_under_concurrency(tmp_path, db_url):
    storage, catalog = _hub(tmp_path, db_url)
    write_record(storage, "a/m/1")
    write_record(storage, "a/m/2")
    try:
        catalog.search()
        start = threading.Barrier(8)

        def download(i: int) -> None:
            start.wait()
            for j in range(250):
                catalog.count_download(ModelName("a", "m", 1 + (i + j) % 2))

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(download, range(8)))
        catalog.downloads_counter.close()  # what shutdown does: writes what is left
        counts = catalog.downloads(ModelName("a", "m"))
        assert counts["total"] == 2000 and counts["by_version"] == {"1": 1000, "2": 1000}
        assert counts["last_30_days"] == 2000 and len(counts["by_day"]) == 1
        assert 1 <= catalog.downloads_counter.writes <= 2000 // 500 + 2  # batches, not events
        assert catalog.search()["items"][0]["downloads"] == 2000
    finally:
        catalog.close()


def test_index_rebuild_command(tmp_path, monkeypatch, capsys):
    from tfhub.cli import main

    storage = LocalStorage(tmp_path / "hub")
    write_record(storage, "a/one/1")
    write_record(storage, "a/one/2")
    assert main(["index", "rebuild", "--root", str(tmp_path / "hub")]) == 0
    assert "indexed 2 model versions" in capsys.readouterr().out
    assert (tmp_path / "hub.catalog.sqlite3").is_file()  # the default: next to the root
    monkeypatch.setenv("TFHUB_DATABASE_URL", "mysql://nope")
    assert main(["index", "rebuild", "--root", str(tmp_path / "hub")]) != 0
    assert "TFHUB_DATABASE_URL" in capsys.readouterr().err
