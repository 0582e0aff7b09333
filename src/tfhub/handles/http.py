"""The hosting-protocol client: ``http(s)://`` handles.

Every request goes through :mod:`tfhub.transport` (timeouts, TLS, proxies, one retry budget
per transfer, the minimum rate and deadline, errors mapped to tfhub's). A tfhub server is
asked for the fast path (:mod:`tfhub.handles.fastpath`); any other server answers with the
tarball, which is streamed, decompressed and unpacked on separate threads and resumed with
range requests when the transfer breaks.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import urllib.parse
from pathlib import Path
from typing import Protocol

import requests

from tfhub import config, protocol, transport
from tfhub.errors import ArchiveError, DownloadError, HubError, OfflineError, ProtocolError
from tfhub.handles import cache, credentials, fastpath
from tfhub.handles.archive import extract_tar_stream
from tfhub.handles.cache import Manifest
from tfhub.handles.transfer import PipelinedStream
from tfhub.progress import byte_bar
from tfhub.transport import BROKEN_TRANSFER, Retry, TransferGuard, get, session

__all__ = [
    "HttpCompressedResolver",
    "HttpUncompressedResolver",
    "append_format_query",
    "get",
    "session",
]

logger = logging.getLogger(__name__)


def is_http(handle: str) -> bool:
    return handle.lower().startswith(("http://", "https://"))


def append_format_query(url: str, fmt: str) -> str:
    """Adds ``tf-hub-format=<fmt>`` to ``url``, keeping every existing query parameter."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.append((protocol.FORMAT_PARAM, fmt))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


_SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)
# After the tar's end, only the rest of the compressed stream may follow (a few KiB).
_MAX_TRAILER = 1 << 20


def stated_sha256(resp: requests.Response) -> str | None:
    """The archive's sha256 that a tfhub hub states (:data:`tfhub.protocol.SHA256_HEADER`),
    on the response or on a redirect that led to it (a hub on S3 answers with a ``307`` to a
    presigned URL and states the digest there; the storage does not)."""
    for answer in (*resp.history, resp):
        value = answer.headers.get(protocol.SHA256_HEADER, "").strip().lower()
        if _SHA256_HEX.fullmatch(value):
            return value
    return None


class _ResumableBody:
    """A response body that, when the transfer breaks, continues with a range request from
    the byte where it stopped (when the server offers ranges and a validator), instead of
    starting over. Resumes spend the transfer's retry budget (:attr:`retry`) and go through
    the same session, timeouts and TLS settings as the first request.

    When the hub stated the archive's sha256, every byte read is hashed and :meth:`verify`
    reads what the unpacker left and compares (the bytes may come from a storage behind the hub, a
    presigned URL or nginx, that the hub no longer checks as it sends)."""

    def __init__(
        self,
        resp: requests.Response,
        url: str,
        handle: str,
        *,
        sess: requests.Session,
        retry: Retry,
        guard: TransferGuard,
        exact: bool = False,
        credentials: bool = True,
    ) -> None:
        self._resp = resp
        self._wire = {"exact": exact, "credentials": credentials}
        self._url = url
        self._handle = handle
        self._sess = sess
        self.retry = retry
        self._guard = guard
        self._offset = 0
        headers = resp.headers
        self._validator = headers.get("ETag") or headers.get("Last-Modified")
        self.resumable = bool(
            resp.status_code == 200
            and headers.get("Accept-Ranges", "").lower() == "bytes"
            and self._validator
            and not self._validator.startswith("W/")
            and not headers.get("Content-Encoding")  # offsets would be off after decoding
            and headers.get("Content-Length", "").isdigit()  # the total a resume must match
        )
        length = headers.get("Content-Length", "")
        self._length = int(length) if length.isdigit() else -1
        self._extra: requests.Response | None = None
        self.expected = stated_sha256(resp)
        self._digest = hashlib.sha256()
        self._lock = threading.Lock()  # the unpacker's thread, then verify()

    def read(self, n: int) -> bytes:
        with self._lock:
            chunk = self._read(n)
            if self.expected is not None:  # hashing costs ~0.3 s per 400 MB: only when stated
                self._digest.update(chunk)
            return chunk

    def verify(self) -> None:
        """Reads the rest of the body (at most :data:`_MAX_TRAILER` bytes) and checks the
        whole against the stated sha256; nothing to do when the hub stated none.

        Raises:
            ArchiveError: the bytes differ from the stated sha256, or go on past the archive.
        """
        if self.expected is None:
            return
        extra = 0
        while chunk := self.read(1 << 16):
            extra += len(chunk)
            if extra > _MAX_TRAILER:
                raise ArchiveError(
                    f"{self._url} went on sending bytes after the end of the model archive; "
                    "refused. Check the hub and its storage.",
                    handle=self._handle,
                )
        got = self._digest.hexdigest()
        if got != self.expected:
            raise ArchiveError(
                f"The archive received for {self._handle} has the sha256 {got}, not the "
                f"{self.expected} the hub stated: it was altered on its way (in the hub's "
                "storage or in transit); nothing was installed. Tell the hub's operator.",
                handle=self._handle,
            )

    def _read(self, n: int) -> bytes:
        while True:
            try:
                # what has arrived, so that a break loses no received bytes
                chunk = transport.read_some((self._extra or self._resp).raw, n, self._guard)
            except HubError:
                raise  # too slow, past the deadline: not a broken transfer
            except BROKEN_TRANSFER:
                if not self._resume():
                    raise
                continue
            if not chunk and 0 <= self._offset < self._length and self._resume():
                continue  # the body ended early without an error
            self._offset += len(chunk)
            return chunk

    def _resume(self) -> bool:
        if not self.resumable or self.retry.exhausted:
            return False
        self.close()
        self.retry.sleep(None, self._guard)
        self.retry = self.retry.increment()
        logger.info("Resuming %s at byte %d", self._url, self._offset)
        headers = {"Range": f"bytes={self._offset}-", "If-Range": str(self._validator)}
        try:
            resp, self.retry = transport.open_response(
                self._url,
                handle=self._handle,
                sess=self._sess,
                retry=self.retry,
                headers=headers,
                guard=self._guard,
                **self._wire,
            )
        except DownloadError:
            return False
        content_range = resp.headers.get("Content-Range", "")
        same = (
            resp.status_code == 206
            and content_range.startswith(f"bytes {self._offset}-")
            and content_range.rpartition("/")[2] == str(self._length)
            and (resp.headers.get("ETag") or resp.headers.get("Last-Modified")) == self._validator
        )
        if not same:
            resp.close()
            return False  # the object changed, or ranges are refused: start over
        self._extra = resp
        return True

    def close(self) -> None:
        if self._extra is not None:
            self._extra.close()
            self._extra = None


_MAX_MANIFEST = 64 << 20


def _read_manifest(resp: requests.Response, handle: str, url: str, guard: TransferGuard) -> bytes:
    parts: list[bytes] = []
    got = 0
    resp.raw.decode_content = True
    while chunk := transport.read_some(resp.raw, 1 << 20, guard):
        parts.append(chunk)
        got += len(chunk)
        if got > _MAX_MANIFEST:
            raise ProtocolError(
                f"{url} sent a files manifest over {_MAX_MANIFEST} bytes.", handle=handle, url=url
            )
    return b"".join(parts)


class Opener(Protocol):
    """Opens the archive's response (the first request of a transfer, and each restart):
    returns it with the retry budget left and whether its URL must be sent exactly and without
    credentials when resumed (a signed URL reached by a redirect)."""

    def __call__(
        self,
        sess: requests.Session,
        retry: Retry,
        headers: dict[str, str] | None,
        guard: TransferGuard,
    ) -> tuple[requests.Response, Retry, bool]: ...


def download_archive(
    handle: str,
    url: str,
    dest: Path,
    *,
    partial: Path | None = None,
    opener: Opener | None = None,
) -> Manifest:
    """Fetches the model at ``url`` (the protocol's compressed URL) into ``dest``.

    With ``partial`` (a staging directory beside the cache entry) and the fast path enabled,
    a tfhub server is asked for the model's files (:mod:`tfhub.handles.fastpath`); any other
    server answers with the tarball. One retry budget covers the whole transfer: the first
    request, resumes of a broken body and restarts. ``opener`` replaces the plain GET of
    ``url`` (the upstream chain, :mod:`tfhub.handles.chain`).
    """
    retry = Retry.from_config()
    guard = TransferGuard(handle, url)
    fast = partial is not None and config.fast_path()
    headers = {"Accept": protocol.ACCEPT_FILES} if fast else None
    sess = credentials.attach(session())  # a read token goes to its own hub only

    def plain(
        sess: requests.Session, retry: Retry, headers: dict[str, str] | None, guard: TransferGuard
    ) -> tuple[requests.Response, Retry, bool]:
        resp, retry = transport.open_response(
            url, handle=handle, sess=sess, retry=retry, headers=headers, guard=guard
        )
        return resp, retry, False

    open_ = opener or plain
    try:
        while True:
            body: _ResumableBody | None = None
            try:
                resp, retry, signed = open_(sess, retry, headers, guard)
                with resp:
                    kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
                    if not (fast and kind == protocol.FILES_MEDIA_TYPE):
                        body = _ResumableBody(
                            resp,
                            resp.url or url,
                            handle,
                            sess=sess,
                            retry=retry,
                            guard=guard,
                            exact=signed,
                            credentials=not signed,
                        )
                        return _unpack(handle, resp, body, dest)
                    manifest_url = resp.url or url
                    data = _read_manifest(resp, handle, manifest_url, guard)
                assert partial is not None
                return fastpath.fetch_manifest(handle, data, manifest_url, dest, partial, guard)
            except HubError:
                raise
            except BROKEN_TRANSFER as exc:
                # The body broke off mid-way and could not be resumed: start this transfer
                # again, with what is left of the budget.
                if body is not None:
                    retry = body.retry
                if retry.exhausted:
                    raise transport.translate(
                        exc, handle=handle, url=url, attempts=retry.attempt + 1
                    ) from exc
                logger.info("Restarting the download of %s after %s", url, exc)
                _clear(dest)
                retry.sleep(None, guard)
                retry = retry.increment()
            finally:
                if body is not None:
                    body.close()
    finally:
        sess.close()


def _unpack(handle: str, resp: requests.Response, body: _ResumableBody, dest: Path) -> Manifest:
    resp.raw.decode_content = True
    length = resp.headers.get("Content-Length")
    bar = byte_bar(f"Downloading {handle}", int(length) if length and length.isdigit() else None)
    stream = PipelinedStream(body, on_bytes=bar.update if bar else None)
    try:
        manifest = extract_tar_stream(stream, dest, source=handle)
        stream.close()  # its reader stops; what it left is read by verify()
        body.verify()
        return manifest
    finally:
        stream.close()
        if bar is not None:
            bar.close()


def _clear(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class HttpCompressedResolver:
    """``http(s)://`` handles in COMPRESSED/AUTO mode: download, unpack and cache the tarball."""

    def is_supported(self, handle: str) -> bool:
        return is_http(handle) and config.model_load_format() is not config.LoadFormat.UNCOMPRESSED

    def __call__(self, handle: str) -> str:
        url = append_format_query(handle, protocol.COMPRESSED)
        partial = cache.partial_path(cache.entry_path(handle))
        return cache.fetch(
            handle,
            lambda tmp: download_archive(handle, url, tmp, partial=partial),
            what="downloaded",
        )


class HttpUncompressedResolver:
    """``http(s)://`` handles in UNCOMPRESSED mode: the server names where the files are.

    The protocol answers ``?tf-hub-format=uncompressed`` with ``303 See Other`` and the storage
    location (``gs://...``) in the body; the model is read from there, not cached.
    """

    def is_supported(self, handle: str) -> bool:
        return is_http(handle) and config.model_load_format() is config.LoadFormat.UNCOMPRESSED

    def __call__(self, handle: str) -> str:
        if config.offline():
            raise OfflineError(
                f"{handle} cannot be resolved offline in UNCOMPRESSED mode (TFHUB_OFFLINE is "
                "set); unset TFHUB_MODEL_LOAD_FORMAT to use the cache.",
                handle=handle,
            )
        url = append_format_query(handle, protocol.UNCOMPRESSED)
        with get(url, handle=handle, allow_redirects=False, raise_for_status=False) as resp:
            try:
                body = resp.raw.read(4096, decode_content=True).decode("utf8", "replace").strip()
            except BROKEN_TRANSFER as exc:
                raise transport.translate(exc, handle=handle, url=url) from exc
            status = resp.status_code
        if status != 303:
            raise ProtocolError(
                f"Expected 303 See Other from {url} but received code {status}; the server does "
                "not offer the uncompressed format. Unset TFHUB_MODEL_LOAD_FORMAT to download the "
                "compressed model instead.",
                handle=handle,
                url=url,
                status=status,
            )
        if not body.startswith("gs://"):
            raise ProtocolError(
                f"Expected {url} to return a gs:// location but received {body[:200]!r}; unset "
                "TFHUB_MODEL_LOAD_FORMAT to download the compressed model instead.",
                handle=handle,
                url=url,
                status=status,
            )
        return body
