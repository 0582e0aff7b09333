"""Writing version records into the catalog database (the index of the storage's records).

A record's row holds the record itself (records are immutable, so the copy never goes
stale), its privacy, its size, its facets, the files it references and its search text.
Inserting a version that is already indexed changes nothing; every insert or delete bumps
``catalog_state.seq`` (the change marker) and recomputes the model's latest flags in the
same transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tfhub.server.db.connection import Connection

__all__ = ["analyze", "delete_versions", "facets_of", "insert_records", "search_words"]

_WORD_RE = re.compile(r"[^\W_]+")
FACET_KINDS = ("publisher", "format", "module_type", "license", "language", "dataset",
               "architecture")  # fmt: skip
_METADATA_FACETS = {
    "module_type": ("module-type", "task"),
    "license": ("license",),
    "language": ("language",),
    "dataset": ("dataset",),
    "architecture": ("network-architecture",),
}


def search_words(text: str) -> str:
    """``text`` as lower-case words (letters and digits; ``_``, ``/``, ``-``... separate), the
    same on both databases."""
    return " ".join(_WORD_RE.findall(text.lower()))


def facets_of(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The (kind, value) pairs a record is filtered and counted by."""
    pairs = {("publisher", str(record["publisher"])), ("format", str(record.get("format", "")))}
    metadata = (record.get("docs") or {}).get("metadata") or {}
    for kind, keys in _METADATA_FACETS.items():
        for key in keys:
            for value in metadata.get(key) or []:
                if str(value).strip():
                    pairs.add((kind, str(value).strip()))
    return sorted(p for p in pairs if p[1])


def _size(record: dict[str, Any]) -> int:
    files = (record.get("blobs") or {}).get("files")
    if files:
        return sum(int(f["size"]) for f in files)
    return int((record.get("archive") or {}).get("size") or 0)


def _texts(record: dict[str, Any]) -> tuple[str, str, str, str, str]:
    docs = record.get("docs") or {}
    name = f"{record['publisher']}/{record['model']}"
    facets = " ".join(value for kind, value in facets_of(record) if kind != "publisher")
    return (
        search_words(name),
        search_words(str(docs.get("title") or "")),
        search_words(str(docs.get("description") or "")),
        search_words(facets),
        search_words(str(docs.get("markdown") or "")),
    )


def _bump(conn: Connection) -> int:
    row = conn.one("UPDATE catalog_state SET seq = seq + 1 WHERE id = 1 RETURNING seq")
    assert row is not None
    return int(row[0])


_COLUMNS = "publisher, model, version, private, sort_name, published_at, size, record, seq"
_MARKS = "?, ?, ?, ?, ?, ?, ?, ?, ?"
_TSV = (  # PostgreSQL: the search text, names weighing most, then description, facets, docs
    ", setweight(to_tsvector('simple', ?), 'A') || setweight(to_tsvector('simple', ?), 'A') || "
    "setweight(to_tsvector('simple', ?), 'B') || setweight(to_tsvector('simple', ?), 'C') || "
    "setweight(to_tsvector('simple', ?), 'D')"
)
_BATCH = 500  # rows per multi-row INSERT


def _version_values(record: dict[str, Any], seq: int) -> list[Any]:
    return [
        record["publisher"],
        record["model"],
        int(record["version"]),
        1 if record.get("private") is True else 0,
        f"{record['publisher']}/{record['model']}".lower(),
        str(record.get("published_at") or ""),
        _size(record),
        json.dumps(record, separators=(",", ":")),
        seq,
    ]


def insert_records(conn: Connection, records: Iterable[dict[str, Any]]) -> int:
    """Indexes ``records`` (skipping versions already indexed); returns how many were new."""
    seq = _bump(conn)  # also the lock that orders concurrent writers on PostgreSQL
    columns, marks = _COLUMNS, _MARKS
    if conn.postgres:
        columns, marks = columns + ", tsv", marks + _TSV
    touched: set[tuple[str, str]] = set()
    facet_rows: list[tuple[Any, ...]] = []
    blob_rows: list[tuple[Any, ...]] = []
    fts_rows: list[tuple[Any, ...]] = []
    pending = list(records)
    new = 0
    for start in range(0, len(pending), _BATCH):
        chunk = pending[start : start + _BATCH]
        texts = [_texts(record) for record in chunk]
        params: list[Any] = []
        for record, text in zip(chunk, texts, strict=True):
            params += _version_values(record, seq) + (list(text) if conn.postgres else [])
        rows = conn.all(
            f"INSERT INTO versions ({columns}) VALUES "
            + ", ".join(f"({marks})" for _ in chunk)
            + " ON CONFLICT (publisher, model, version) DO NOTHING "
            "RETURNING id, publisher, model, version",
            params,
        )
        ids = {(p, m, int(v)): int(i) for i, p, m, v in rows}
        for record, text in zip(chunk, texts, strict=True):
            key = (record["publisher"], record["model"], int(record["version"]))
            version_id = ids.pop(key, None)
            if version_id is None:
                continue  # already indexed: records are immutable
            new += 1
            touched.add((record["publisher"], record["model"]))
            facet_rows += [(version_id, kind, value) for kind, value in facets_of(record)]
            described = record.get("blobs") or {}
            blob_rows += [
                (f["sha256"], version_id, int(f["size"]), int(described["block_size"]),
                 json.dumps(list(f["blocks"])))
                for f in described.get("files", [])
            ]  # fmt: skip
            if not conn.postgres:
                fts_rows.append((version_id, *text))
    conn.executemany(
        "INSERT INTO facets (version_id, kind, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        facet_rows,
    )
    conn.executemany(
        "INSERT INTO blobs (sha256, version_id, size, block_size, blocks) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        blob_rows,
    )
    conn.executemany(
        "INSERT INTO versions_fts (rowid, name, title, description, facets, docs) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        fts_rows,
    )
    _update_latest(conn, touched)
    return new


def delete_versions(conn: Connection, names: Iterable[tuple[str, str, int]]) -> int:
    """Removes versions whose records left the storage; returns how many were indexed."""
    touched: set[tuple[str, str]] = set()
    removed = 0
    _bump(conn)
    for publisher, model, version in names:
        row = conn.one(
            "DELETE FROM versions WHERE publisher = ? AND model = ? AND version = ? RETURNING id",
            (publisher, model, version),
        )
        if row is None:
            continue
        removed += 1
        touched.add((publisher, model))
        for table in ("facets", "blobs"):
            conn.execute(f"DELETE FROM {table} WHERE version_id = ?", (row[0],))
        if not conn.postgres:
            conn.execute("DELETE FROM versions_fts WHERE rowid = ?", (row[0],))
    _update_latest(conn, touched)
    return removed


def _update_latest(conn: Connection, models: set[tuple[str, str]]) -> None:
    """Recomputes which row is each model's latest version, and its latest public one."""
    sql = (
        "UPDATE versions SET "
        "latest_all = CASE WHEN version = (SELECT max(o.version) FROM versions o WHERE "
        "o.publisher = versions.publisher AND o.model = versions.model) THEN 1 ELSE 0 END, "
        "latest_public = CASE WHEN version = (SELECT max(o.version) FROM versions o WHERE "
        "o.publisher = versions.publisher AND o.model = versions.model AND o.private = 0) "
        "THEN 1 ELSE 0 END"
    )
    if len(models) > 50:
        conn.execute(sql)
        return
    conn.executemany(sql + " WHERE publisher = ? AND model = ?", sorted(models))


def analyze(conn: Connection) -> None:
    """Refreshes the planner's statistics (after many rows changed: a rebuild)."""
    conn.execute("ANALYZE versions, facets, blobs" if conn.postgres else "ANALYZE")
