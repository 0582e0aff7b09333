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
from typing import Any

import requests
import urllib3

from tfhub import config, protocol
from tfhub.errors import DownloadError, OfflineError, ProtocolError, RemoteNotFoundError
from tfhub.handles import cache
from tfhub.handles.archive import extract_tar_stream
from tfhub.handles.cache import Manifest
from tfhub.handles.transfer import PipelinedStream

__all__ = [
    "HttpCompressedResolver",
    "HttpUncompressedResolver",
    "append_format_query",
    "get",
    "session",
]

logger = logging.getLogger(__name__)

USER_AGENT = "tfhub/0.1 (+hosting-protocol client)"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
# Errors while reading a response body that mean "the transfer broke off".
_BROKEN_TRANSFER: tuple[type[BaseException], ...] = (
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


def _backoff(attempt: int, retry_after: str | None) -> float:
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
                delay = _backoff(attempt, None)
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
                delay = _backoff(attempt, resp.headers.get("Retry-After"))
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


def _progress_bar(url: str, total: int | None) -> Any:
    if not config.download_progress():
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"Downloading {url}",
        leave=False,
    )


def download_archive(handle: str, url: str, dest: Path) -> Manifest:
    """Streams the archive at ``url`` into ``dest``, retrying the whole transfer on failures."""
    retries = config.http_retries()
    attempt = 0
    while True:
        try:
            with get(url, handle=handle) as resp:
                resp.raw.decode_content = True
                length = resp.headers.get("Content-Length")
                bar = _progress_bar(handle, int(length) if length and length.isdigit() else None)
                stream = PipelinedStream(resp.raw, on_bytes=bar.update if bar else None)
                try:
                    return extract_tar_stream(stream, dest, source=handle)
                finally:
                    stream.close()
                    if bar is not None:
                        bar.close()
        except DownloadError:
            raise
        except _BROKEN_TRANSFER as exc:
            # The body broke off mid-way (reset, timeout): start this transfer again.
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
            time.sleep(_backoff(attempt, None))


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
        return cache.fetch(
            handle, lambda tmp: download_archive(handle, url, tmp), what="downloaded"
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
            except _BROKEN_TRANSFER as exc:
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
