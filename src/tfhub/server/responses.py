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
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tfhub import protocol
from tfhub.errors import StorageError
from tfhub.server.storage import Storage

__all__ = ["cache_control", "error_response", "ranged_response"]

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
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Type": content_type,
        "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(sha256)).decode(),
        protocol.SHA256_HEADER: sha256,
        "Cache-Control": cache_control(immutable),
        "Vary": "Accept",
    }
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
