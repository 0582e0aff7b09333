"""Where the hub keeps its models: a local directory, or an S3-compatible bucket.

The storage is the only source of truth (no database): a version exists exactly when its
record ``<publisher>/<model>/<version>/meta.json`` exists. Records are created with an
atomic *create-if-absent* (a hard link locally, a conditional ``PutObject`` on S3), which is
what makes versions immutable and concurrent publishes of one version safe, even across
several server replicas sharing one bucket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from tfhub.errors import ConfigError

__all__ = ["LocalStorage", "S3Storage", "Storage", "open_storage"]

_CHUNK = 1 << 20


class Storage(Protocol):
    """The operations the server needs from a storage backend (keys use ``/``)."""

    def describe(self) -> str: ...

    def read_bytes(self, key: str) -> bytes | None: ...

    def create(self, key: str, data: bytes) -> bool:
        """Writes ``key`` only if it does not exist yet; False if it existed."""
        ...

    def put_file(self, key: str, path: Path) -> None: ...

    def size(self, key: str) -> int | None: ...

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive, in chunks."""
        ...

    def list_keys(self, suffix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    """A directory on the local file system (the default: nothing to set up)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key {key!r} escapes the storage root")
        return path

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.link(tmp, path)  # atomic, and never replaces an existing record
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk

    def list_keys(self, suffix: str) -> list[str]:
        keys = []
        for dirpath, dirnames, files in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in files:
                key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if key.endswith(suffix) and not name.startswith("."):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


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
        return self.prefix + key

    def _missing(self, exc: Any) -> bool:
        return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")

    def read_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return body.read()  # type: ignore[no-any-return]
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise

    def create(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                return False
            raise

    def put_file(self, key: str, path: Path) -> None:
        self._client.upload_file(str(path), self.bucket, self._key(key))

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            return int(head["ContentLength"])
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        body = self._client.get_object(
            Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}"
        )["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()

    def list_keys(self, suffix: str) -> list[str]:
        keys = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if key.endswith(suffix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_storage(root: str) -> LocalStorage | S3Storage:
    """A storage for ``root``: ``s3://bucket[/prefix]`` or a local directory."""
    if root.startswith("s3://"):
        return S3Storage(root)
    if "://" in root:
        raise ConfigError(f"Unsupported storage {root!r}; use a directory or s3://bucket/prefix.")
    return LocalStorage(root)
