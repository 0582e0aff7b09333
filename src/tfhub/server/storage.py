"""Where the hub keeps its models: a local directory, or an S3-compatible bucket.

The storage is the only source of truth (no database): a version exists exactly when its
record ``<publisher>/<model>/<version>/meta.json`` exists. Records are created with an
atomic *create-if-absent* (a hard link locally, a conditional ``PutObject`` on S3), which is
what makes versions immutable and concurrent publishes of one version safe, even across
several server replicas sharing one bucket.

Everything of the server speaks to a :class:`Storage`; :func:`open_storage` picks the backend
by the root's scheme from a table that :func:`register_storage` extends. Every backend:

* accepts only keys of ASCII name parts joined by ``/`` (no ``..``, ``.``, empty parts,
  backslashes or absolute keys; :func:`check_key`), so nothing can address a file outside
  the root;
* raises :class:`~tfhub.errors.StorageError` for every failure of the backend (``OSError``,
  botocore errors), never the backend's own exceptions; a missing key is ``None`` from
  :meth:`Storage.read_bytes` / :meth:`Storage.size`, and a ``StorageError`` elsewhere;
* lists only keys without a dot-prefixed part (``.blobs/...`` is content, not a listing);
  :meth:`Storage.list_objects` lists everything under a prefix, with sizes and modification
  times (for the garbage collector, :mod:`tfhub.server.gc`);
* can refresh an object's modification time (:meth:`Storage.touch`: a publish that reuses a
  stored blob marks it as in use) and delete an object only if it was not refreshed since a
  time (:meth:`Storage.delete_if_older`);
* may hand out a short-lived URL at which clients fetch an object straight from the backend
  (:meth:`Storage.download_url`; S3's presigned URLs, None for a directory).

Error messages name the key and the failure, never the root's local path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from tfhub.errors import ConfigError, StorageError
from tfhub.server.storage_keys import (
    MAX_KEY_LENGTH,
    StoredObject,
    check_key,
    check_prefix,
)
from tfhub.server.storage_s3 import S3Storage

__all__ = [
    "MAX_KEY_LENGTH",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StoredObject",
    "check_key",
    "open_storage",
    "register_storage",
]

_CHUNK = 1 << 20


class Storage(Protocol):
    """The operations the server needs from a storage backend (keys use ``/``)."""

    def describe(self) -> str:
        """Where the data is, for the operator's log (never sent to clients)."""
        ...

    def read_bytes(self, key: str) -> bytes | None:
        """The whole object, or None when it does not exist."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Writes ``key`` atomically only if it does not exist yet; False if it existed."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Writes (or replaces) ``key`` with the file's bytes; readers see old or new only."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""
        ...

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (clipped to the object), in chunks."""
        ...

    def list_keys(self, suffix: str) -> list[str]:
        """Sorted keys ending with ``suffix``, without dot-prefixed parts."""
        ...

    def delete(self, key: str) -> None:
        """Removes ``key``; nothing happens when it does not exist."""
        ...

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with ``prefix`` (``""`` or ``<key>/``), dot-prefixed
        parts included, sorted by key."""
        ...

    def touch(self, key: str) -> bool:
        """Sets ``key``'s modification time to now; False when it could not (missing, or a
        backend limit): the caller then stores the object again."""
        ...

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        """Deletes ``key`` only if its modification time is before ``cutoff`` (epoch s);
        whether it deleted it. A :meth:`touch` that happens concurrently either keeps the
        object or fails (returns False), never succeeds on an object then deleted."""
        ...

    def download_url(self, key: str, expires_in: int) -> str | None:
        """A URL at which anyone holding it can GET ``key`` (``Range`` supported) for
        ``expires_in`` seconds, or None when the backend has no such URLs."""
        ...


def _os_error(operation: str, key: str, exc: OSError) -> StorageError:
    why = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        why = "the storage's disk is full"
    return StorageError(f"Storage {operation} of {key!r} failed: {why}.", key=key)


class LocalStorage:
    """A directory on the local file system (the default: nothing to set up)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot use {self.root} as the hub's storage: {exc}") from exc

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:  # a link inside the root pointing out of it
            raise StorageError(f"Storage key {key!r} escapes the storage root.", key=key)
        return path

    def read_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _os_error("read", key, exc) from exc

    def _staged(self, key: str, write: Callable[[Path], None]) -> Path:
        """A temp file beside ``key``'s path, filled by ``write``."""
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(tmp)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _os_error("write", key, exc) from exc
        return tmp

    def create(self, key: str, data: bytes) -> bool:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        tmp = self._staged(key, write)
        try:
            os.link(tmp, self._path(key))  # atomic, and never replaces an existing record
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise _os_error("create", key, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def put_file(self, key: str, path: Path) -> None:
        def write(tmp: Path) -> None:
            shutil.copyfile(path, tmp)

        tmp = self._staged(key, write)
        try:
            os.replace(tmp, self._path(key))
        except OSError as exc:
            raise _os_error("write", key, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return path.stat().st_size if path.is_file() else None
        except OSError as exc:
            raise _os_error("stat", key, exc) from exc

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    yield chunk
        except FileNotFoundError as exc:
            raise StorageError(f"No object {key!r} in the storage.", key=key) from exc
        except OSError as exc:
            raise _os_error("read", key, exc) from exc

    def list_keys(self, suffix: str) -> list[str]:
        keys = []
        try:
            for dirpath, dirnames, files in os.walk(self.root, onerror=_raise):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in files:
                    key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                    if key.endswith(suffix) and not name.startswith("."):
                        keys.append(key)
        except OSError as exc:
            raise _os_error("listing", suffix, exc) from exc
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _os_error("delete", key, exc) from exc

    def list_objects(self, prefix: str) -> list[StoredObject]:
        found = []
        base = self.root / check_prefix(prefix) if prefix else self.root
        try:
            for dirpath, _dirs, files in os.walk(base, onerror=_raise_unless_missing):
                for name in files:
                    path = Path(dirpath) / name
                    with contextlib.suppress(FileNotFoundError):  # removed while listing
                        st = path.lstat()
                        if stat.S_ISREG(st.st_mode):
                            key = path.relative_to(self.root).as_posix()
                            found.append(StoredObject(key, st.st_size, st.st_mtime))
        except OSError as exc:
            raise _os_error("listing", prefix, exc) from exc
        return sorted(found)

    def touch(self, key: str) -> bool:
        path = self._path(key)
        try:
            os.utime(path)
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise _os_error("touch", key, exc) from exc

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        # Moved aside first (atomic), then judged: a touch before the move shows in the
        # moved file's time (it is put back), a touch after it finds no file (False).
        path = self._path(key)
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.gc")
        try:
            os.rename(path, aside)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise _os_error("delete", key, exc) from exc
        try:
            if aside.stat().st_mtime < cutoff:
                aside.unlink()
                return True
            with contextlib.suppress(FileExistsError):  # unless a publish put a new copy
                os.link(aside, path)
            aside.unlink()
            return False
        except OSError as exc:
            raise _os_error("delete", key, exc) from exc

    def download_url(self, key: str, expires_in: int) -> str | None:
        return None


def _raise_unless_missing(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _raise(exc: OSError) -> None:
    raise exc


StorageFactory = Callable[[str], Storage]
_FACTORIES: dict[str, StorageFactory] = {}


def register_storage(scheme: str, factory: StorageFactory) -> None:
    """Makes ``open_storage("<scheme>://...")`` call ``factory(url)`` (replacing any earlier
    factory of that scheme). The factory returns an object with :class:`Storage`'s methods."""
    _FACTORIES[scheme.lower()] = factory


register_storage("s3", S3Storage)
register_storage("file", lambda url: LocalStorage(url[len("file://") :]))


def open_storage(root: str) -> Storage:
    """The storage for ``root``: ``<scheme>://...`` through the registered factory of that
    scheme (``s3``, ``file`` and any :func:`register_storage` added), else a local directory.

    Raises:
        ConfigError: an unknown scheme.
        StorageError: the storage cannot be used.
    """
    scheme, sep, _ = root.partition("://")
    if not sep:
        return LocalStorage(root)
    factory = _FACTORIES.get(scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_FACTORIES))
        raise ConfigError(f"Unsupported storage {root!r}; use a directory or one of {known}.")
    return factory(root)
