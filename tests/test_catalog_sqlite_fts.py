"""SQLite's full-text search (FTS5) and TensorFlow's own SQLite build, which lacks it.

TensorFlow's library carries a SQLite without FTS5; a process that imports ``tensorflow``
before Python's ``sqlite3`` module gets that one. ``import tfhub`` loads ``sqlite3`` first,
and a hub created in a process where the order was the other way answers 503 with a message
saying what to do (instead of a search error deep in SQLite).
"""

from __future__ import annotations

from tests.helpers import run_python


def test_the_catalog_searches_when_tfhub_is_imported_before_tensorflow(tmp_path):
    out = run_python(
        f"""
        import tfhub
        import tensorflow
        from tfhub.server.catalog import Catalog
        from tfhub.server.storage import open_storage

        catalog = Catalog(open_storage({str(tmp_path / "hub")!r}))
        catalog.start()
        print("total", catalog.search("anything")["total"])
        """
    )
    assert "total 0" in out


def test_a_hub_after_tensorflow_answers_503_with_a_clear_message(tmp_path):
    out = run_python(
        f"""
        import tensorflow
        import tfhub
        from starlette.testclient import TestClient
        from tfhub.server.app import create_app

        resp = TestClient(create_app({str(tmp_path / "hub")!r})).get("/api/models?q=word")
        print(resp.status_code, resp.json()["error"])
        """
    )
    assert out.startswith("503 ") and "FTS5" in out and "TFHUB_DATABASE_URL" in out
