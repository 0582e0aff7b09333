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
* lists only keys without a dot-prefixed part (``.blobs/...`` is content, not a listing).

Error messages name the key and the failure, never the root's local path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from tfhub.errors import ConfigError, StorageError

__all__ = [
    "LocalStorage",
    "S3Storage",
    "Storage",
    "check_key",
    "open_storage",
    "register_storage",
]

_CHUNK = 1 << 20
_KEY_PART_RE = re.compile(r"[A-Za-z0-9_.-]{1,255}", re.ASCII)
MAX_KEY_LENGTH = 1024


def check_key(key: str) -> str:
    """``key`` if it is a valid storage key; see the module doc.

    Raises:
        StorageError: the key is empty, too long, absolute, or has a part that is empty,
            ``.``/``..`` or not made of ASCII letters, digits, ``_``, ``.`` and ``-``.
    """
    parts = key.split("/") if isinstance(key, str) else [""]
    if len(key) > MAX_KEY_LENGTH or any(
        p in (".", "..") or not _KEY_PART_RE.fullmatch(p) for p in parts
    ):
        raise StorageError(
            f"Invalid storage key {key!r}: use ASCII name parts (letters, digits, '_', '.', "
            "'-') joined by '/', without '.' or '..' parts.",
            key=str(key),
        )
    return key


def _hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


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


def _raise(exc: OSError) -> None:
    raise exc


class S3Storage:
    """An S3-compatible bucket (``s3://bucket/prefix``), through boto3.

    The endpoint, credentials and region come from the usual AWS settings
    (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...). Requests have timeouts and boto3's
    bounded retries.
    """

    def __init__(self, url: str) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigError(
                f'{url} needs boto3; install it with pip install "tfhub[server-s3]".'
            ) from None
        rest = url[len("s3://") :]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ConfigError(f"{url} names no bucket; use s3://bucket[/prefix].")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = boto3.client(
            "s3",
            config=Config(
                connect_timeout=10, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"}
            ),
        )
        self._url = url

    def describe(self) -> str:
        return self._url

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextlib.contextmanager
    def _mapped(self, operation: str, key: str) -> Iterator[None]:
        """Turns boto3/botocore failures into StorageError (S3's code and message)."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except StorageError:
            raise
        except (ClientError, BotoCoreError, Boto3Error, OSError) as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, ClientError):
                cause = cause.__cause__ or cause.__context__  # boto3 wraps S3's answer
            if isinstance(cause, ClientError):
                error = cause.response.get("Error", {})
                why = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
            elif isinstance(exc, BotoCoreError):
                why = f"{type(exc).__name__}: {exc}"
            else:  # boto3's own messages name local temp files: not for clients
                why = type(exc).__name__
            raise StorageError(f"S3 {operation} of {key!r} failed ({why}).", key=key) from exc

    @staticmethod
    def _code(exc: Any) -> str | None:
        return exc.response.get("Error", {}).get("Code")  # type: ignore[no-any-return]

    def read_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._mapped("read", key):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            except ClientError as exc:
                if self._code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            with contextlib.closing(body):
                return body.read()  # type: ignore[no-any-return]

    def create(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        with self._mapped("create", key):
            try:
                self._client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
                return True
            except ClientError as exc:
                if self._code(exc) in (
                    "PreconditionFailed",
                    "ConditionalRequestConflict",
                    "412",
                    "409",
                ):
                    return False
                raise

    def put_file(self, key: str, path: Path) -> None:
        with self._mapped("write", key):
            self._client.upload_file(str(path), self.bucket, self._key(key))

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        with self._mapped("stat", key):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if self._code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            return int(head["ContentLength"])

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        with self._mapped("read", key):
            body = self._client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}"
            )["Body"]
            with contextlib.closing(body):
                yield from body.iter_chunks(_CHUNK)

    def list_keys(self, suffix: str) -> list[str]:
        keys = []
        with self._mapped("listing", suffix):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    if key.endswith(suffix) and not _hidden(key):
                        keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._mapped("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))


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
