"""The S3-compatible backend of :mod:`tfhub.server.storage` (``s3://bucket/prefix``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tfhub.errors import ConfigError, StorageError
from tfhub.server.storage_keys import StoredObject, check_key, check_prefix, hidden

__all__ = ["S3Storage"]

_CHUNK = 1 << 20


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
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 5, "mode": "standard"},
                signature_version="s3v4",  # presigned URLs: SigV4, which every region takes
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
                    # botocore retries a PUT whose answer was lost (a timeout under load): the
                    # first attempt may have created the object, and the retry is refused.
                    # The same bytes there mean this call created it.
                    return self.read_bytes(key) == data
                raise

    def put_file(self, key: str, path: Path) -> None:
        with self._mapped("write", key):
            self._client.upload_file(str(path), self.bucket, self._key(key))

    def _head(self, key: str) -> dict[str, Any] | None:
        """HEAD of ``key`` (inside a ``_mapped`` block), or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            return self._client.head_object(  # type: ignore[no-any-return]
                Bucket=self.bucket, Key=self._key(key)
            )
        except ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def size(self, key: str) -> int | None:
        with self._mapped("stat", key):
            head = self._head(key)
            return None if head is None else int(head["ContentLength"])

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
                    if key.endswith(suffix) and not hidden(key):
                        keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._mapped("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_objects(self, prefix: str) -> list[StoredObject]:
        found = []
        with self._mapped("listing", prefix):
            paginator = self._client.get_paginator("list_objects_v2")
            full = self.prefix + check_prefix(prefix)
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    found.append(
                        StoredObject(
                            item["Key"][len(self.prefix) :],
                            int(item["Size"]),
                            item["LastModified"].timestamp(),
                        )
                    )
        return sorted(found)

    def touch(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        full = self._key(key)
        with self._mapped("touch", key):
            try:  # a copy onto itself: the same bytes, a new LastModified
                self._client.copy_object(
                    Bucket=self.bucket,
                    Key=full,
                    CopySource={"Bucket": self.bucket, "Key": full},
                    MetadataDirective="REPLACE",
                    Metadata={"tfhub-touched": str(int(time.time()))},
                )
            except ClientError as exc:
                # Missing, or over the 5 GiB a single copy may move: the caller stores the
                # object again, which also makes it new.
                if self._code(exc) in ("NoSuchKey", "404", "NotFound", "InvalidRequest"):
                    return False
                raise
            return True

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        # S3 has no rename: HEAD, then DELETE. A touch landing in between (milliseconds)
        # would be lost: it takes a publish reusing a blob unreferenced for the whole grace
        # period, in that window (documented in tfhub.server.gc).
        with self._mapped("delete", key):
            head = self._head(key)
            if head is None or head["LastModified"].timestamp() >= cutoff:
                return False
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
            return True

    def download_url(self, key: str, expires_in: int) -> str | None:
        with self._mapped("presign", key):
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_in,
            )
        return url
