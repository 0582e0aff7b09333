"""The hosting-protocol client: ``http(s)://`` handles.

One HTTP setup for all of tfhub: every request has a connect and read timeout
(``TFHUB_HTTP_TIMEOUT``), idempotent GETs are retried with capped exponential backoff and
jitter on transient failures (connection errors, 408/429/5xx, honouring ``Retry-After``),
TLS certificates are verified unless ``TFHUB_DISABLE_CERT_VALIDATION`` is set, and proxies
come from the environment (``https_proxy``, ``no_proxy``, ...).
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import urllib3

from tfhub import __version__, config, protocol
from tfhub.errors import DownloadError, OfflineError, ProtocolError, RemoteNotFoundError
from tfhub.handles import cache, fastpath
from tfhub.handles.archive import extract_tar_stream
from tfhub.handles.cache import Manifest
from tfhub.handles.transfer import PipelinedStream
from tfhub.progress import byte_bar

__all__ = [
    "HttpCompressedResolver",
    "HttpUncompressedResolver",
    "append_format_query",
    "get",
    "session",
]

logger = logging.getLogger(__name__)

USER_AGENT = f"tfhub/{__version__} (+hosting-protocol client)"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
# Errors while reading a response body that mean "the transfer broke off".
BROKEN_TRANSFER: tuple[type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 8.0


def is_http(handle: str) -> bool:
    return handle.lower().startswith(("http://", "https://"))


def append_format_query(url: str, fmt: str) -> str:
    """Adds ``tf-hub-format=<fmt>`` to ``url``, keeping every existing query parameter."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.append((protocol.FORMAT_PARAM, fmt))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def session() -> requests.Session:
    """A new session configured from the current settings (TLS, proxies from the environment)."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    s.trust_env = True
    if config.cert_validation_disabled():
        warnings.warn(
            "TFHUB_DISABLE_CERT_VALIDATION is set: TLS certificates are not verified when "
            "resolving handles.",
            stacklevel=3,
        )
        s.verify = False
    return s


def backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:  # an HTTP date or garbage: use our own schedule
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, min(seconds, 60.0))
    delay: float = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0**attempt)
    return delay * (0.5 + random.random() / 2)


def _status_error(handle: str, url: str, resp: requests.Response) -> DownloadError:
    status = resp.status_code
    where = url if url == handle else f"{url} (for {handle})"
    if status in (404, 410):
        return RemoteNotFoundError(
            f"{where}: the server answered {status} {resp.reason}; check the publisher, model "
            "name and version in the handle.",
            handle=handle,
            url=url,
            status=status,
        )
    hint = {
        401: "the server wants credentials",
        403: "access is forbidden (credentials, or a signed URL that expired)",
    }.get(status, "try again later, or check the server")
    return DownloadError(
        f"{where}: the server answered {status} {resp.reason}; {hint}.",
        handle=handle,
        url=url,
        status=status,
    )


@contextmanager
def get(
    url: str,
    *,
    handle: str,
    allow_redirects: bool = True,
    headers: dict[str, str] | None = None,
    sess: requests.Session | None = None,
    raise_for_status: bool = True,
) -> Iterator[requests.Response]:
    """GETs ``url`` (streamed) with timeouts and retries; yields a response with status < 400
    (any final status with ``raise_for_status=False``).

    The response is closed when the block ends.

    Raises:
        RemoteNotFoundError: 404 or 410.
        DownloadError: any other failure, after the retries are spent.
    """
    timeout = config.http_timeout()
    retries = config.http_retries()
    own = sess is None
    s = sess or session()
    try:
        attempt = 0
        while True:
            try:
                resp = s.get(
                    url,
                    stream=True,
                    timeout=(timeout, timeout),
                    allow_redirects=allow_redirects,
                    headers=headers,
                    # Explicit, so that REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment
                    # cannot turn verification back on once the user has disabled it.
                    verify=s.verify,
                )
            except requests.exceptions.SSLError as exc:
                # Not transient: retrying cannot fix a certificate.
                raise DownloadError(
                    f"TLS verification failed for {url} ({handle}): {exc}. Fix the server's "
                    "certificate or point REQUESTS_CA_BUNDLE at your CA; as a last resort set "
                    "TFHUB_DISABLE_CERT_VALIDATION=true.",
                    handle=handle,
                    url=url,
                ) from exc
            except RETRY_EXCEPTIONS as exc:
                if attempt >= retries:
                    raise DownloadError(
                        f"Could not download {handle} from {url} after {attempt + 1} attempts: "
                        f"{exc}. Check the network, proxy settings (https_proxy) and the URL.",
                        handle=handle,
                        url=url,
                    ) from exc
                delay = backoff(attempt, None)
                logger.info("Retrying %s in %.1fs after %s", url, delay, exc)
            except requests.RequestException as exc:
                raise DownloadError(
                    f"Could not download {handle} from {url}: {exc}.", handle=handle, url=url
                ) from exc
            else:
                if (
                    resp.status_code < 400
                    or (resp.status_code not in RETRY_STATUSES)
                    or (attempt >= retries)
                ):
                    break
                delay = backoff(attempt, resp.headers.get("Retry-After"))
                logger.info("Retrying %s in %.1fs after status %s", url, delay, resp.status_code)
                resp.close()
            attempt += 1
            time.sleep(delay)
        try:
            if raise_for_status and resp.status_code >= 400:
                raise _status_error(handle, resp.url or url, resp)
            yield resp
        finally:
            resp.close()
    finally:
        if own:
            s.close()


class _ResumableBody:
    """A response body that, when the transfer breaks, continues with a range request from
    the byte where it stopped (when the server offers ranges and a validator), instead of
    starting over. Used for the plain protocol's tarball."""

    def __init__(self, resp: requests.Response, url: str, handle: str) -> None:
        self._resp = resp
        self._url = url
        self._handle = handle
        self._offset = 0
        self._resumes = 0
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
        self._extra_session: requests.Session | None = None

    def read(self, n: int) -> bytes:
        while True:
            try:
                # read1: what has arrived, so that a break loses no received bytes
                chunk: bytes = (self._extra or self._resp).raw.read1(n)
            except BROKEN_TRANSFER:
                if not self._resume():
                    raise
                continue
            if not chunk and 0 <= self._offset < self._length and self._resume():
                continue  # the body ended early without an error
            self._offset += len(chunk)
            return chunk

    def _resume(self) -> bool:
        if not self.resumable or self._resumes >= config.http_retries():
            return False
        self._resumes += 1
        self.close()
        time.sleep(backoff(self._resumes, None))
        logger.info("Resuming %s at byte %d", self._url, self._offset)
        headers = {"Range": f"bytes={self._offset}-", "If-Range": str(self._validator)}
        s = session()
        try:
            resp = s.get(
                self._url,
                stream=True,
                timeout=(config.http_timeout(), config.http_timeout()),
                headers=headers,
                verify=s.verify,
            )
        except requests.RequestException:
            s.close()
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
            s.close()
            return False  # the object changed, or ranges are refused: start over
        self._extra, self._extra_session = resp, s
        return True

    def close(self) -> None:
        if self._extra is not None:
            self._extra.close()
            self._extra = None
        if self._extra_session is not None:
            self._extra_session.close()
            self._extra_session = None


def download_archive(handle: str, url: str, dest: Path, *, partial: Path | None = None) -> Manifest:
    """Fetches the model at ``url`` (the protocol's compressed URL) into ``dest``.

    With ``partial`` (a staging directory beside the cache entry) and the fast path enabled,
    a tfhub server is asked for the model's files (:mod:`tfhub.handles.fastpath`); any other
    server answers with the tarball, which is streamed, decompressed and unpacked on separate
    threads and resumed with range requests when the transfer breaks.
    """
    retries = config.http_retries()
    fast = partial is not None and config.fast_path()
    headers = {"Accept": f"{protocol.FILES_MEDIA_TYPE}, */*;q=0.5"} if fast else None
    attempt = 0
    while True:
        try:
            with get(url, handle=handle, headers=headers) as resp:
                content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                if fast and content_type == protocol.FILES_MEDIA_TYPE:
                    body = resp.raw.read(_MAX_MANIFEST + 1, decode_content=True)
                    if len(body) > _MAX_MANIFEST:
                        raise ProtocolError(
                            f"{url} sent a files manifest over {_MAX_MANIFEST} bytes.",
                            handle=handle,
                            url=url,
                        )
                    manifest_url = resp.url or url
                else:
                    return _unpack_response(handle, url, resp, dest)
            block_size, files = fastpath.parse_files_manifest(body, handle=handle, url=manifest_url)
            bar = byte_bar(f"Downloading {handle}", sum(f.size for f in files))
            try:
                assert partial is not None
                return fastpath.download_files(
                    handle,
                    block_size,
                    files,
                    dest,
                    partial,
                    on_bytes=bar.update if bar else None,
                )
            finally:
                if bar is not None:
                    bar.close()
        except DownloadError:
            raise
        except BROKEN_TRANSFER as exc:
            # The body broke off mid-way and could not be resumed: start this transfer again.
            if attempt >= retries:
                raise DownloadError(
                    f"The download of {handle} from {url} broke off: {exc}. Check the network "
                    "and try again.",
                    handle=handle,
                    url=url,
                ) from exc
            logger.info("Restarting the download of %s after %s", url, exc)
            _clear(dest)
            attempt += 1
            time.sleep(backoff(attempt, None))


_MAX_MANIFEST = 64 << 20


def _unpack_response(handle: str, url: str, resp: requests.Response, dest: Path) -> Manifest:
    resp.raw.decode_content = True
    length = resp.headers.get("Content-Length")
    bar = byte_bar(f"Downloading {handle}", int(length) if length and length.isdigit() else None)
    body = _ResumableBody(resp, resp.url or url, handle)
    stream = PipelinedStream(body, on_bytes=bar.update if bar else None)
    try:
        return extract_tar_stream(stream, dest, source=handle)
    finally:
        stream.close()
        body.close()
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
                raise DownloadError(
                    f"Reading the answer of {url} failed: {exc}.", handle=handle, url=url
                ) from exc
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
