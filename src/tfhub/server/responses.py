"""Serving stored bytes: conditional and ranged responses, verified against their hashes.

What the hub serves is checked against the hashes its published records hold, while it
streams (so a file altered, truncated or replaced in the storage after publishing is never
served intact):

* a model file (``/api/blobs/<sha256>``) is read in whole blocks of the record's block size;
  each block is checked against the record's block hash **before any byte of it is sent**,
  also for ranges. The first block is checked before the status line, so a file that is bad
  from its start gives a clean 503; a later bad block aborts the response (the client sees a
  connection closed before ``Content-Length`` bytes);
* an archive (``?tf-hub-format=compressed``), when sent whole, is hashed as it goes and its
  last chunk is only sent once the sha256 matches; a range of an archive is not verified
  (the record has no block hashes for archives).

Off the Python path (:class:`Delivery`, from the settings), the hub checks the request (name,
access, existence) and hands the transfer over:

* ``TFHUB_ACCEL_REDIRECT=/prefix/`` (a directory behind nginx, ``deploy/nginx/tfhub.conf``):
  an empty answer with ``X-Accel-Redirect: /prefix/<key>``; nginx sends the file from its
  ``internal`` location (``Range``, ``sendfile``);
* ``TFHUB_REDIRECT_DOWNLOADS=1`` (S3): ``307`` to a presigned URL valid
  ``TFHUB_REDIRECT_EXPIRY`` seconds.

Then nobody hashes the bytes on the server's side: a file altered in the storage after
publishing is sent as it is. What replaces the check is the client's: the tfhub fast path
verifies every block against the manifest's hashes (which the hub sends from its records,
never from the storage) before it is written, and its tarball path checks a whole archive
against the record's sha256 that the hub sends in the :data:`tfhub.protocol.SHA256_HEADER`
header (also on the 307) before installing it. ``tensorflow_hub`` checks nothing.
Operators who do not trust their storage keep delivery through Python.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tfhub import config, protocol
from tfhub.errors import ConfigError, StorageError
from tfhub.server.storage import LocalStorage, Storage

__all__ = [
    "Delivery",
    "Served",
    "cache_control",
    "deliver",
    "error_response",
    "ranged_response",
]

_RANGE_RE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII)


def cache_control(immutable: bool) -> str:
    return "public, max-age=31536000, immutable" if immutable else "no-cache"


def error_response(status: int, message: str) -> JSONResponse:
    """The JSON error body of every API failure: ``{"error": message, "status": status}``."""
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _mismatch(key: str, what: str) -> StorageError:
    return StorageError(
        f"The stored {what} of {key!r} does not match the hash its record holds; it was "
        "altered in the storage after publishing and is not served. Re-publish the model.",
        key=key,
    )


def _verified_blocks(
    storage: Storage, key: str, start: int, end: int, blob: dict[str, Any]
) -> Iterator[bytes | memoryview]:
    """Bytes ``start``..``end`` of a model file, each whole block checked before it is sent."""
    block_size, size, blocks = int(blob["block_size"]), int(blob["size"]), blob["blocks"]
    for index in range(start // block_size, end // block_size + 1):
        first = index * block_size
        last = min(first + block_size, size) - 1
        data = b"".join(storage.iter_range(key, first, last))
        if (
            index >= len(blocks)
            or len(data) != last - first + 1
            or hashlib.sha256(data).hexdigest() != blocks[index]
        ):
            raise _mismatch(key, f"block {index}")
        view = memoryview(data)
        yield view[max(start - first, 0) : end - first + 1]


def _verified_whole(storage: Storage, key: str, size: int, sha256: str) -> Iterator[bytes]:
    """A whole object, hashed on the way; the last chunk goes out only if the hash matches."""
    digest = hashlib.sha256()
    pending: bytes | None = None
    sent = 0
    for chunk in storage.iter_range(key, 0, size - 1):
        if pending is not None:
            yield pending
        digest.update(chunk)
        sent += len(chunk)
        pending = chunk
    if sent != size or digest.hexdigest() != sha256:
        raise _mismatch(key, "object")
    if pending is not None:
        yield pending


def _object_headers(sha256: str, content_type: str, immutable: bool) -> dict[str, str]:
    return {
        "ETag": f'"{sha256}"',
        "Accept-Ranges": "bytes",
        "Content-Type": content_type,
        "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(sha256)).decode(),
        protocol.SHA256_HEADER: sha256,
        "Cache-Control": cache_control(immutable),
        "Vary": "Accept",
    }


@dataclass(frozen=True)
class Delivery:
    """Who sends the bytes of downloads: Python (both None), nginx (``accel_prefix``) or the
    storage itself through presigned URLs (``redirect_expiry`` seconds)."""

    accel_prefix: str | None = None
    redirect_expiry: int | None = None

    @classmethod
    def from_config(cls, storage: Storage) -> Delivery:
        """From ``TFHUB_ACCEL_REDIRECT`` / ``TFHUB_REDIRECT_DOWNLOADS``.

        Raises:
            ConfigError: both are set, X-Accel without a local directory, or redirects with
                a storage that has no download URLs.
        """
        prefix = config.accel_redirect()
        redirect = config.redirect_downloads()
        if prefix and redirect:
            raise ConfigError(
                "TFHUB_ACCEL_REDIRECT and TFHUB_REDIRECT_DOWNLOADS are both set; use the "
                "first with a local directory behind nginx, the second with S3."
            )
        if prefix and not isinstance(storage, LocalStorage):
            raise ConfigError(
                "TFHUB_ACCEL_REDIRECT needs a local storage directory that nginx can read; "
                "with S3 use TFHUB_REDIRECT_DOWNLOADS=1."
            )
        if redirect:
            if storage.download_url(".blobs/probe", 1) is None:
                raise ConfigError(
                    "TFHUB_REDIRECT_DOWNLOADS=1 needs a storage with download URLs (s3://); "
                    "with a local directory use nginx and TFHUB_ACCEL_REDIRECT."
                )
            return cls(None, config.redirect_expiry())
        return cls(prefix, None)

    @property
    def redirects(self) -> bool:
        """Whether Python hands downloads over (and so never sees their completion)."""
        return self.accel_prefix is not None or self.redirect_expiry is not None


@dataclass(frozen=True)
class Served:
    """What a download sends: a stored object and how its record describes it (``blob``: a
    model file's record entry, with its block hashes; None for an archive)."""

    key: str
    size: int
    sha256: str
    content_type: str
    immutable: bool
    blob: dict[str, Any] | None = None


def deliver(request: Request, storage: Storage, delivery: Delivery, obj: Served) -> Response:
    """``obj``'s bytes as ``delivery`` says: handed to nginx, redirected to the storage, or
    sent by :func:`ranged_response`. Call it only after the request's checks passed."""
    if delivery.accel_prefix is not None:
        headers = _object_headers(obj.sha256, obj.content_type, obj.immutable)
        headers["X-Accel-Redirect"] = delivery.accel_prefix + obj.key  # check_key'd: ASCII
        return Response(status_code=200, headers=headers)
    if delivery.redirect_expiry is not None:
        url = storage.download_url(obj.key, delivery.redirect_expiry)
        if url is not None:
            return Response(
                status_code=307,
                headers={
                    "Location": url,
                    "Cache-Control": "no-store",  # the URL expires; the handle does not
                    protocol.SHA256_HEADER: obj.sha256,
                },
            )
    return ranged_response(
        request,
        storage,
        obj.key,
        obj.size,
        obj.sha256,
        content_type=obj.content_type,
        immutable=obj.immutable,
        blob=obj.blob,
    )


def ranged_response(
    request: Request,
    storage: Storage,
    key: str,
    size: int,
    sha256: str,
    *,
    content_type: str,
    immutable: bool,
    blob: dict[str, Any] | None = None,
) -> Response:
    """``key``'s bytes with ETag/304, ``Range``/206/416 and ``Digest``; verified as the module
    doc says (``blob``: the record's description of a model file, with its block hashes)."""
    etag = f'"{sha256}"'
    headers = _object_headers(sha256, content_type, immutable)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    start, end, status = 0, size - 1, 200
    range_header = request.headers.get("range")
    if range_header and request.headers.get("if-range", etag) == etag:
        match = _RANGE_RE.fullmatch(range_header.strip())
        if match and (match[1] or match[2]):
            if match[1]:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
            else:  # a suffix: the last N bytes
                start = max(size - int(match[2]), 0)
            if start > end or start >= size:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if start > end:  # an empty file
        if storage.size(key) != 0:
            raise _mismatch(key, "object")
        return Response(status_code=status, headers=headers)
    body: Iterator[Any]
    if blob is not None:
        body = _verified_blocks(storage, key, start, end, blob)
    elif start == 0 and end == size - 1:
        body = _verified_whole(storage, key, size, sha256)
    else:
        body = storage.iter_range(key, start, end)
    first = next(body, b"")  # a bad first block or a storage failure: a clean error, not a cut
    return StreamingResponse(itertools.chain([first], body), status_code=status, headers=headers)
