"""The hub's catalog: model names, version records, documentation, search.

Layout in the storage::

    <publisher>/<model>/<version>/meta.json          the version record (its existence = the
                                                     version exists; written last, atomically)
    <publisher>/<model>/<version>/<sha256>.tar.gz    the archive served to clients

``<model>`` may contain slashes (``imagenet/mobilenet_v2/feature_vector``), as on tfhub.dev.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import logging
import re
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from tfhub import config, protocol
from tfhub.errors import CatalogError, ModelNameError, StorageError
from tfhub.server.access import ReadScope
from tfhub.server.db import queries
from tfhub.server.db.connection import Connection, Database, default_database
from tfhub.server.db.downloads import DownloadCounter, Key, model_downloads, write_counts
from tfhub.server.db.migrations import migrate
from tfhub.server.db.rows import FACET_KINDS, analyze, delete_versions, insert_records
from tfhub.server.storage import Storage

__all__ = ["Catalog", "ModelName", "ModelNameError", "parse_docs", "parse_model_path"]

logger = logging.getLogger(__name__)

RECORD = "meta.json"
_PUBLIC = ReadScope()
_ANALYZE_AFTER = 500  # versions added or removed by a reconcile before statistics are redone
_COUNTS_CACHED = 1024  # searches whose total and facet counts are kept (per change marker)
_METADATA_RE = re.compile(r"^<!--\s*(?P<key>[\w\s-]+?)\s*:\s*(?P<value>.+?)\s*-->$")
_REPEATABLE = frozenset({"dataset", "language", "task", "network-architecture"})
KNOWN_METADATA = frozenset(
    {
        "asset-path",
        "module-type",
        "task",
        "fine-tunable",
        "format",
        "license",
        "network-architecture",
        "dataset",
        "language",
        "colab",
        "interactive-visualizer",
        "demo",
        "parent-model",
    }
)
# Accepted values of the controlled metadata keys (tfhub.dev's validator and tags/*.yaml).
FORMATS = frozenset({"hub", "saved_model", "saved_model_2"})
FINE_TUNABLE = frozenset({"true", "false"})
LICENSES = frozenset(
    {
        "apache-2.0",
        "bsd-2-clause",
        "bsd-3-clause",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl-2.0",
        "lgpl-2.1",
        "lgpl-3.0",
        "mit",
        "mpl-2.0",
        "cddl-1.0",
        "epl-2.0",
        "cc-by-nc-4.0",
        "cc-by-sa-4.0",
        "custom",
    }
)
TASK_PREFIXES = ("image-", "text-", "audio-", "video-")


# Longest accepted names: well past tfhub.dev's, well below the file systems' limits.
MAX_PUBLISHER = 64
MAX_MODEL = 200
MAX_MODEL_PART = 100
MAX_VERSION_DIGITS = 9


@dataclass(frozen=True)
class ModelName:
    publisher: str
    model: str
    version: int | None = None

    @property
    def path(self) -> str:
        base = f"{self.publisher}/{self.model}"
        return base if self.version is None else f"{base}/{self.version}"


def validate(publisher: str, model: str, version: str | int | None) -> ModelName:
    """Checks each part against the tfhub.dev naming rules.

    Raises:
        ModelNameError: with a message naming the part and the rule.
    """
    if len(publisher) > MAX_PUBLISHER or not protocol.PUBLISHER_RE.fullmatch(publisher):
        raise ModelNameError(
            f"Invalid publisher {publisher[:80]!r}: use up to {MAX_PUBLISHER} lower-case ASCII "
            "letters, digits and '-'."
        )
    if (
        len(model) > MAX_MODEL
        or not protocol.MODEL_NAME_RE.fullmatch(model)
        or any(
            part.startswith(".") or part.isdigit() or len(part) > MAX_MODEL_PART
            for part in model.split("/")
        )
    ):
        raise ModelNameError(
            f"Invalid model name {model[:80]!r}: use ASCII letters, digits, '_', '.', '-' and "
            f"'/' between parts (at most {MAX_MODEL} characters, {MAX_MODEL_PART} per part); a "
            "part may not start with '.' or be only digits (those are versions)."
        )
    if version is None:
        return ModelName(publisher, model)
    text = str(version)
    if len(text) > MAX_VERSION_DIGITS or not protocol.VERSION_RE.fullmatch(text):
        raise ModelNameError(
            f"Invalid version {text[:20]!r}: versions are positive integers written with the "
            f"ASCII digits 0-9 (at most {MAX_VERSION_DIGITS})."
        )
    return ModelName(publisher, model, int(text))


def parse_model_path(path: str) -> ModelName:
    """``pub/model/3`` → version 3; ``pub/model`` → the latest version (``version=None``)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2:
        raise ModelNameError(
            f"{path[:80]!r} is not a model path: use /<publisher>/<model>[/<version>]."
        )
    if len(parts) >= 3 and parts[-1].isascii() and parts[-1].isdigit():
        return validate(parts[0], "/".join(parts[1:-1]), parts[-1])
    return validate(parts[0], "/".join(parts[1:]), None)


def parse_docs(markdown: str) -> dict[str, Any]:
    """The tfhub.dev documentation format: a ``# Title`` line, a one-sentence description,
    ``<!-- key: value -->`` metadata lines, then free Markdown.

    Raises:
        ValueError: no title line, a malformed or unknown metadata key, or a repeated key
            that may not repeat.
    """
    lines = markdown.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("Documentation must start with a '# Title' line.")
    title = lines[0][2:].strip()
    metadata: dict[str, list[str]] = {}
    body: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if stripped.startswith("<!--") and not body_started(body):
            match = _METADATA_RE.match(stripped)
            if not match:
                raise ValueError(f"Line {number}: malformed metadata {stripped!r}.")
            key = match["key"].strip()
            if key not in KNOWN_METADATA:
                raise ValueError(
                    f"Line {number}: unknown metadata key {key!r}; known keys: "
                    f"{', '.join(sorted(KNOWN_METADATA))}."
                )
            if key in metadata and key not in _REPEATABLE:
                raise ValueError(f"Line {number}: metadata key {key!r} may not repeat.")
            metadata.setdefault(key, []).append(match["value"])
            continue
        body.append(line)
    text = "\n".join(body).strip()
    description = text.split("\n\n")[0].strip() if text else ""
    return {
        "title": title,
        "description": description,
        "metadata": metadata,
        "markdown": text,
        "warnings": metadata_warnings(metadata),
    }


def metadata_warnings(metadata: dict[str, list[str]]) -> list[str]:
    """What a publisher should fix in accepted metadata: values outside tfhub.dev's
    vocabularies (kept as written, but flagged, never silently trusted)."""
    warnings = []

    def check(key: str, allowed: frozenset[str]) -> None:
        for value in metadata.get(key, []):
            if value.strip().lower() not in allowed:
                warnings.append(
                    f"metadata {key}: {value!r} is not one of {', '.join(sorted(allowed))}."
                )

    check("format", FORMATS)
    check("fine-tunable", FINE_TUNABLE)
    check("license", LICENSES)
    for key in ("module-type", "task"):
        for value in metadata.get(key, []):
            if not value.strip().lower().startswith(TASK_PREFIXES):
                warnings.append(
                    f"metadata {key}: {value!r} is not a task (tasks start with "
                    f"{', '.join(TASK_PREFIXES)} as in text-embedding)."
                )
    if "module-type" in metadata:
        warnings.append("metadata module-type is the old name of task (removed 2021): use task.")
    return warnings


def body_started(body: list[str]) -> bool:
    """Metadata lines count only in the header (before the first heading of the body)."""
    return any(line.lstrip().startswith("#") for line in body)


class Catalog:
    """The index of the storage's records in a database (storage stays the source of truth).

    Reads (:meth:`record`, :meth:`versions`, :meth:`search`, :meth:`blob`...) are answered by
    the database, within a :class:`ReadScope` (default: public models only). Nothing is
    cached in the process, so a version indexed by one replica is listed by every replica
    sharing the database at its next query. Publishing calls :meth:`insert` right after the
    record is written; a record written without it (a crash in between, another tool, a
    replica with its own SQLite file) is indexed by :meth:`reconcile`, which runs at the
    first use and then every ``TFHUB_CATALOG_RECONCILE_SECONDS`` in the server (a listing of
    the storage's record keys compared with the index: no record is read unless missing).
    ``tfhub index rebuild`` (:meth:`rebuild`) re-reads every record.
    """

    def __init__(self, storage: Storage, *, database: str | None = None) -> None:
        self.storage = storage
        self.db = Database(database or config.database_url() or default_database(storage))
        self._lock = threading.Lock()
        self._ready = self._migrated = False
        self._ready_lock = threading.Lock()
        self._stop = threading.Event()
        self._reconciler: threading.Thread | None = None
        self.downloads_counter = DownloadCounter(self._write_counts)
        self._counts: collections.OrderedDict[Any, tuple[int, Any]] = collections.OrderedDict()

    @staticmethod
    def record_key(name: ModelName) -> str:
        return f"{name.path}/{RECORD}"

    def _connect(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A database connection, once the schema is migrated and the index has followed the
        storage at least once (until then each use tries again, and fails as the storage
        or the database does)."""
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    if not self._migrated:
                        migrate(self.db)
                        self._migrated = True
                    self.reconcile()
                    self._ready = True
        return self.db.connect(write=write)

    def start(self) -> None:
        """Indexes what the storage holds and starts the periodic reconcile (the server). A
        storage or database failure here is logged: requests answer 503 until it passes."""
        try:
            with self._connect():
                pass
        except StorageError as exc:
            logger.error("The catalog could not follow the storage yet: %s", exc)
        interval = config.catalog_reconcile_seconds()
        if interval > 0 and self._reconciler is None:
            self._reconciler = threading.Thread(
                target=self._reconcile_every, args=(interval,), name="tfhub-reconcile"
            )
            self._reconciler.daemon = True
            self._reconciler.start()

    def _reconcile_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                with self._connect():  # the first time: migrations too
                    pass
                self.reconcile()
            except Exception:  # a storage or database outage: try again next time
                logger.exception("Reconciling the catalog with the storage failed")

    def close(self) -> None:
        """Writes the pending download counts and stops the background threads."""
        self._stop.set()
        self.downloads_counter.close()
        self.db.close()

    # Writing the index.

    def insert(self, record: dict[str, Any]) -> None:
        """Indexes a record just written to the storage (publishing). A database failure is
        logged, not raised: the record is published, and the next reconcile indexes it."""
        try:
            with self._connect(write=True) as conn:
                insert_records(conn, [record])
        except CatalogError as exc:
            logger.error("Indexing %s failed (the next reconcile will): %s", record["handle"], exc)

    def _read_records(self, keys: list[str]) -> list[dict[str, Any]]:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            raws = list(pool.map(self.storage.read_bytes, keys))
        found = (_checked_record(key, raw) for key, raw in zip(keys, raws, strict=True))
        return [record for record in found if record is not None]

    def reconcile(self) -> tuple[int, int]:
        """Indexes the records the storage has and the index lacks, and drops the versions
        whose records are gone; returns (added, removed)."""
        with self.db.connect() as conn:  # before the listing: a version published meanwhile
            rows = conn.all("SELECT publisher, model, version FROM versions")  # is not "gone"
        listed = set(self.storage.list_keys("/" + RECORD))
        indexed = {f"{p}/{m}/{v}/{RECORD}": (p, m, int(v)) for p, m, v in rows}
        missing = sorted(listed - indexed.keys())
        gone = [indexed[key] for key in sorted(indexed.keys() - listed)]
        if not missing and not gone:
            return 0, 0
        records = self._read_records(missing)
        with self.db.connect(write=True) as conn:
            added = insert_records(conn, records)
            removed = delete_versions(conn, gone)
            if added + removed > _ANALYZE_AFTER:
                analyze(conn)
        if added or removed:
            logger.info("Catalog reconciled: %d version(s) added, %d removed", added, removed)
        return added, removed

    def rebuild(self) -> int:
        """Re-reads every record of the storage into a fresh index (download counts are kept);
        returns the number of versions indexed. Readers see the old index until it is done."""
        migrate(self.db)
        records = self._read_records(self.storage.list_keys("/" + RECORD))
        with self.db.connect(write=True) as conn:
            for table in ("facets", "blobs", "versions"):
                conn.execute(f"DELETE FROM {table}")
            if not conn.postgres:
                conn.execute("DELETE FROM versions_fts")
            count = insert_records(conn, records)
            analyze(conn)
        self._ready = self._migrated = True
        return count

    def seq(self) -> int:
        """The change marker: grows with every change of the index."""
        with self._connect() as conn:
            row = conn.one("SELECT seq FROM catalog_state WHERE id = 1")
        return int(row[0]) if row else 0

    # Reading it, within a scope.

    def record(self, name: ModelName, scope: ReadScope = _PUBLIC) -> dict[str, Any] | None:
        """The record of one version, or of the latest readable when ``name.version`` is None."""
        with self._connect() as conn:
            return queries.record(conn, scope, name.publisher, name.model, name.version)

    def versions(self, name: ModelName, scope: ReadScope = _PUBLIC) -> list[int]:
        with self._connect() as conn:
            return queries.versions(conn, scope, name.publisher, name.model)

    def blob(self, sha256: str, scope: ReadScope = _PUBLIC) -> dict[str, Any] | None:
        """The published file named ``sha256`` (``size``, ``block_size``, ``blocks``: the
        sha256 of each block), or None when no record the scope may read references it."""
        with self._connect() as conn:
            return queries.blob(conn, scope, sha256)

    def search(
        self,
        q: str | None = None,
        publisher: str | None = None,
        fmt: str | None = None,
        module_type: str | None = None,
        *,
        filters: Mapping[str, str | None] | None = None,
        sort: str = "relevance",
        page: int = 1,
        per_page: int | None = 20,
        scope: ReadScope = _PUBLIC,
    ) -> dict[str, Any]:
        """A page of models (``items``: latest readable record plus ``versions``,
        ``latest_version``, ``downloads``, ``size``), ``total``, ``pages`` and ``facets``
        (per kind, ``{"value", "count"}`` over every match). ``filters``: facet kind →
        value (kinds: publisher, format, module_type, license, language, dataset,
        architecture); ``per_page`` None: every match.

        Raises:
            ValueError: an unknown sort or facet kind, or a page below 1.
        """
        chosen = {"publisher": publisher, "format": fmt, "module_type": module_type}
        chosen.update(filters or {})
        unknown = set(chosen) - set(FACET_KINDS)
        if unknown:
            raise ValueError(f"Unknown filter {sorted(unknown)}; use {', '.join(FACET_KINDS)}.")
        if sort not in queries.SORTS:
            raise ValueError(f"Unknown sort {sort!r}; use {', '.join(queries.SORTS)}.")
        if page < 1 or (per_page is not None and per_page < 1):
            raise ValueError("page and per_page start at 1.")
        given = {kind: value for kind, value in chosen.items() if value}
        key = (scope, q, tuple(sorted(given.items())))
        with self._connect() as conn:
            row = conn.one("SELECT seq FROM catalog_state WHERE id = 1")  # the change marker
            seq = int(row[0]) if row else 0
            with self._lock:
                cached = self._counts.get(key)
            counted = cached[1] if cached is not None and cached[0] == seq else None
            found = queries.search(
                conn,
                scope,
                q=q,
                filters=given,
                sort=sort,
                page=page,
                per_page=per_page,
                counted=counted,
            )
        with self._lock:  # totals and facets do not change until the index does
            self._counts[key] = (seq, (found["total"], found["facets"]))
            self._counts.move_to_end(key)
            while len(self._counts) > _COUNTS_CACHED:
                self._counts.popitem(last=False)
        return found

    def models(self, scope: ReadScope = _PUBLIC) -> list[dict[str, Any]]:
        """Every listed model (its latest readable record plus ``versions``...), by name."""
        return list(self.search(sort="name", per_page=None, scope=scope)["items"])

    def all_records(self, scope: ReadScope = _PUBLIC) -> list[dict[str, Any]]:
        """Every readable record, by publisher, model and version."""
        cond, params = queries.ScopeSql.of(scope).readable()
        with self._connect() as conn:
            rows = conn.all(
                f"SELECT v.record FROM versions v WHERE {cond} "
                "ORDER BY v.publisher, v.model, v.version",
                params,
            )
        return [json.loads(row[0]) for row in rows]

    # Download counts.

    def count_download(self, name: ModelName) -> None:
        """Counts one completed download of ``name`` (with its version); never blocks."""
        if name.version is not None:
            self.downloads_counter.add(name.publisher, name.model, name.version)

    def _write_counts(self, counts: collections.Counter[Key]) -> None:
        with self._connect(write=True) as conn:
            write_counts(conn, counts)

    def downloads(self, name: ModelName, scope: ReadScope = _PUBLIC) -> dict[str, Any]:
        """``{"total", "last_30_days", "by_version", "by_day"}`` of a model."""
        with self._connect() as conn:
            return model_downloads(conn, scope, name.publisher, name.model)


def _checked_record(key: str, raw: bytes | None) -> dict[str, Any] | None:
    """The record stored at ``key``, if it is one and names the version its key names."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        name = validate(record["publisher"], record["model"], record["version"])
        if not isinstance(record["version"], int) or Catalog.record_key(name) != key:
            raise ValueError(f"it names {name.path}")
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("Ignoring the record %s: not a valid record for its key (%s).", key, exc)
        return None
    return record  # type: ignore[no-any-return]
