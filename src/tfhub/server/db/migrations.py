"""The catalog's schema, as numbered plain-SQL migrations per database.

:func:`migrate` runs at every start: it applies, in order, the migrations not yet recorded in
``catalog_migrations``, inside one transaction that holds a lock (PostgreSQL: an advisory
lock; SQLite: the write lock), so replicas starting together apply each migration once and
a failed migration leaves nothing behind. Running it again changes nothing.

Tables: ``versions`` (one row per version record: the record itself, its privacy, whether it
is the model's latest version and latest public version, the search text), ``facets``
(kind/value pairs of each version: publisher, format, module type, license, language,
dataset, architecture), ``blobs`` (the files each version references), ``downloads`` (per
version and UTC day) and ``download_totals`` (per model, for sorting), ``catalog_state``
(``seq``: bumped by every change, the cheap change marker).
"""

from __future__ import annotations

import datetime

from tfhub.server.db.connection import Connection, Database

__all__ = ["MIGRATIONS", "migrate"]

_COMMON = [
    """CREATE TABLE facets (
        version_id BIGINT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (kind, value, version_id))""",
    "CREATE INDEX facets_version ON facets (version_id, kind, value)",
    """CREATE TABLE blobs (
        sha256 TEXT NOT NULL, version_id BIGINT NOT NULL, size BIGINT NOT NULL,
        block_size BIGINT NOT NULL, blocks TEXT NOT NULL, PRIMARY KEY (sha256, version_id))""",
    "CREATE INDEX blobs_version ON blobs (version_id)",
    """CREATE TABLE downloads (
        publisher TEXT NOT NULL, model TEXT NOT NULL, version INTEGER NOT NULL,
        day TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (publisher, model, version, day))""",
    """CREATE TABLE download_totals (
        publisher TEXT NOT NULL, model TEXT NOT NULL, total BIGINT NOT NULL,
        PRIMARY KEY (publisher, model))""",
    "CREATE TABLE catalog_state (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)",
    "INSERT INTO catalog_state (id, seq) VALUES (1, 0)",
    "CREATE INDEX versions_latest_all ON versions (latest_all, sort_name)",
    "CREATE INDEX versions_latest_public ON versions (latest_public, sort_name)",
    "CREATE INDEX versions_published ON versions (published_at)",
]

_VERSIONS_COLUMNS = """
        publisher TEXT NOT NULL, model TEXT NOT NULL, version INTEGER NOT NULL,
        private INTEGER NOT NULL, latest_all INTEGER NOT NULL DEFAULT 0,
        latest_public INTEGER NOT NULL DEFAULT 0, sort_name TEXT NOT NULL,
        published_at TEXT NOT NULL, size BIGINT NOT NULL, record TEXT NOT NULL,
        seq BIGINT NOT NULL, UNIQUE (publisher, model, version)"""

MIGRATIONS: dict[str, list[tuple[int, list[str]]]] = {
    "sqlite": [
        (
            1,
            [
                f"CREATE TABLE versions (id INTEGER PRIMARY KEY, {_VERSIONS_COLUMNS})",
                *_COMMON,
                # rowid = versions.id; names weigh most, then title, description, facets, docs.
                "CREATE VIRTUAL TABLE versions_fts USING fts5(name, title, description, "
                "facets, docs, tokenize = 'unicode61 remove_diacritics 2')",
            ],
        ),
    ],
    "postgresql": [
        (
            1,
            [
                "CREATE TABLE versions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                f"{_VERSIONS_COLUMNS}, tsv TSVECTOR NOT NULL)",
                *_COMMON,
                "CREATE INDEX versions_tsv ON versions USING GIN (tsv)",
            ],
        ),
    ],
}

_LOCK_ID = 0x7F4B_C47A  # pg_advisory_xact_lock key of tfhub's migrations


def migrate(db: Database) -> list[int]:
    """Applies the missing migrations; returns the numbers applied now (empty: up to date)."""
    applied_now = []
    with db.connect(write=True) as conn:
        if db.postgres:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS catalog_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.all("SELECT version FROM catalog_migrations")}
        for number, statements in MIGRATIONS[db.dialect]:
            if number in done:
                continue
            _apply(conn, number, statements)
            applied_now.append(number)
    return applied_now


def _apply(conn: Connection, number: int, statements: list[str]) -> None:
    for statement in statements:
        conn.execute(statement)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    conn.execute(
        "INSERT INTO catalog_migrations (version, applied_at) VALUES (?, ?)", (number, now)
    )
