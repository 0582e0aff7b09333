"""Garbage collection of a hub's storage: files that no record references.

What it deletes: model files (``.blobs/<sha256>``) and archives (``<name>/<version>/*.tar.gz``)
that no record (``meta.json``) references, e.g. left by a publish that lost a race or died,
or by a version whose record was removed; and the storage's own temp files left by crashes.
Records and anything else are never touched.

Safe while publishes run (on any replica). A publish writes its files before its record,
and marks each blob it reuses as in use (:meth:`Storage.touch`; a blob that is gone by then
is stored again). So:

1. everything in the storage is listed with its modification time, *then* the records are
   read: a record created after that read belongs to a publish that wrote or touched its
   files after the listing began;
2. only files unreferenced **and** older than the grace period (default 24 h; longer than
   any publish takes from its first file to its record) are candidates;
3. right before deleting, the records are read again, and each file is deleted only if it
   was still not modified since the cutoff (:meth:`Storage.delete_if_older`: on a directory
   atomically against a concurrent touch; on S3 a HEAD then a DELETE, milliseconds apart).

A record that cannot be read or parsed stops the collection before anything is deleted
(its references are unknown). On a directory, a GC killed between moving a file aside and
deciding about it leaves ``.<sha256>.<id>.gc`` beside it (never collected): move it back if
a record references it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from tfhub.errors import StorageError
from tfhub.server.publish import blob_key
from tfhub.server.storage import Storage, StoredObject

__all__ = ["GcReport", "collect", "referenced_keys"]

DEFAULT_GRACE_HOURS = 24.0
_BLOB_RE = re.compile(r"\.blobs/[0-9a-f]{64}", re.ASCII)
_TEMP_RE = re.compile(r"(?:.*/)?\.[^/]+\.[0-9a-f]{32}\.tmp", re.ASCII)  # the storage's own


@dataclass
class GcReport:
    """What :func:`collect` found and did (``deleted``: would delete, in a dry run)."""

    records: int
    dry_run: bool
    deleted: list[StoredObject] = field(default_factory=list)
    young: list[StoredObject] = field(default_factory=list)  # unreferenced, within grace

    @property
    def freed_bytes(self) -> int:
        return sum(o.size for o in self.deleted)


def referenced_keys(storage: Storage) -> tuple[int, set[str]]:
    """The number of records and every storage key they reference (archives and blobs).

    Raises:
        StorageError: a record cannot be read or is not a valid record.
    """
    keys: set[str] = set()
    count = 0
    for key in storage.list_keys("/meta.json"):
        data = storage.read_bytes(key)
        if data is None:  # removed since the listing: references nothing any more
            continue
        try:
            record = json.loads(data)
            keys.add(str(record["archive"]["key"]))
            for f in (record.get("blobs") or {}).get("files", []):
                keys.add(blob_key(str(f["sha256"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StorageError(
                f"The record {key!r} is not a valid record ({type(exc).__name__}: {exc}); the "
                "garbage collection deletes nothing while a record's references are unknown. "
                "Repair or remove that record, then run it again.",
                key=key,
            ) from None
        count += 1
    return count, keys


def _collectable(key: str) -> bool:
    if _BLOB_RE.fullmatch(key) or _TEMP_RE.fullmatch(key):
        return True
    return key.endswith(".tar.gz") and not any(p.startswith(".") for p in key.split("/"))


def collect(
    storage: Storage,
    *,
    grace_hours: float = DEFAULT_GRACE_HOURS,
    dry_run: bool = False,
    now: float | None = None,
) -> GcReport:
    """Deletes what no record references and is older than ``grace_hours`` (the module doc
    says how this stays safe during publishes); with ``dry_run`` only reports it.

    Raises:
        StorageError: the storage failed, or a record is unreadable (nothing is deleted).
    """
    if grace_hours < 0:
        raise ValueError(f"grace_hours must be >= 0, not {grace_hours}")
    cutoff = (time.time() if now is None else now) - grace_hours * 3600
    objects = storage.list_objects("")  # first the files, then the records (step 1)
    records, referenced = referenced_keys(storage)
    report = GcReport(records, dry_run)
    candidates: list[StoredObject] = []
    for obj in objects:
        if obj.key in referenced or not _collectable(obj.key):
            continue
        (candidates if obj.mtime < cutoff else report.young).append(obj)
    if dry_run or not candidates:
        report.deleted = candidates
        return report
    _, referenced = referenced_keys(storage)  # step 3: once more, right before deleting
    for obj in candidates:
        if obj.key not in referenced and storage.delete_if_older(obj.key, cutoff):
            report.deleted.append(obj)
    return report
