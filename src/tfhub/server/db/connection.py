"""Connections to the catalog database: SQLite (stdlib ``sqlite3``) or PostgreSQL (psycopg 3).

Both speak the same SQL here: statements are written with ``?`` placeholders and turned
into ``%s`` for psycopg (so no statement may hold a literal ``?`` or ``%``). Connections are
pooled (a few per process); every failure of the driver becomes a
:class:`~tfhub.errors.CatalogError` (the server answers 503), and a connection that failed
is dropped rather than reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tfhub.errors import CatalogError

__all__ = ["Connection", "Database", "default_database"]

_POOL_SIZE = 8
_WAIT = 30.0  # seconds: how long a request waits for a free connection or a SQLite lock
_CONNECT_TIMEOUT = 10  # seconds to reach PostgreSQL
_STATEMENT_TIMEOUT_MS = 30_000


class Connection:
    """One driver connection with the ``?`` placeholder style on both databases."""

    def __init__(self, raw: Any, postgres: bool) -> None:
        self.raw = raw
        self.postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.postgres:
            with self.raw.cursor() as cursor:
                cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
        else:
            self.raw.executemany(sql, [tuple(r) for r in rows])

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.execute(sql, params).fetchone()
        return None if row is None else tuple(row)


class Database:
    """A small pool of connections to ``url`` (``sqlite:///path`` or ``postgresql://...``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self.dialect = "postgresql" if self.postgres else "sqlite"
        self._errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise CatalogError(
                    "TFHUB_DATABASE_URL names PostgreSQL, which needs psycopg: "
                    'pip install "tfhub[server]".'
                ) from None
            self._errors = (psycopg.Error,)
        else:
            self.path = Path(url[len("sqlite:///") - 1 :] if url.startswith("sqlite:///") else url)
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(_POOL_SIZE)
        self._closed = False

    def describe(self) -> str:
        """The database without its password, for messages and the log."""
        if not self.postgres:
            return str(self.path)
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    def _open(self) -> Connection:
        if self.postgres:
            import psycopg

            pg: Any = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=_CONNECT_TIMEOUT,
                options=f"-c statement_timeout={_STATEMENT_TIMEOUT_MS}",
            )
            return Connection(pg, True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(
            self.path, timeout=_WAIT, isolation_level=None, check_same_thread=False
        )
        options = {row[0] for row in raw.execute("PRAGMA compile_options")}
        if "ENABLE_FTS5" not in options:
            raw.close()
            raise CatalogError(
                f"The SQLite library this process loaded ({sqlite3.sqlite_version}) has no "
                "FTS5, which the catalog's search needs: TensorFlow carries a SQLite without "
                "it, used when tensorflow is imported before Python's sqlite3. Import tfhub "
                "before tensorflow, run `tfhub serve` as its own process, or use PostgreSQL "
                "(TFHUB_DATABASE_URL)."
            )
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        return Connection(raw, False)

    @contextlib.contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A pooled connection inside one transaction (``write``: a writing one, serialized
        with the other writers), committed when the block ends without an exception."""
        if not self._slots.acquire(timeout=_WAIT):
            raise CatalogError(
                f"The catalog database {self.describe()} is busy: no free connection within "
                f"{_WAIT:g} s."
            )
        conn: Connection | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            if self.postgres:
                with conn.raw.transaction():
                    yield conn
            else:
                conn.raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.raw.execute("ROLLBACK")
                    raise
                conn.raw.execute("COMMIT")
            if not self._closed:
                self._idle.put(conn)
                conn = None
        except self._errors as exc:
            raise CatalogError(
                f"The catalog database {self.describe()} failed: {exc}. The storage is "
                "unchanged; `tfhub index rebuild` rebuilds the catalog from it."
            ) from exc
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.raw.close()
            self._slots.release()

    def close(self) -> None:
        """Closes the idle connections (those in use close when they are given back)."""
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                conn.raw.close()


def default_database(storage: Any) -> str:
    """SQLite next to a directory root (``<root>.catalog.sqlite3``); for another storage, a
    file in the user's data directory named after the storage (and its endpoint)."""
    root = getattr(storage, "root", None)
    if isinstance(root, Path):
        return f"sqlite:///{root.parent / (root.name + '.catalog.sqlite3')}"
    where = f"{storage.describe()} {os.environ.get('AWS_ENDPOINT_URL', '')}"
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    return f"sqlite:///{data / 'tfhub' / 'catalogs' / (digest + '.sqlite3')}"
