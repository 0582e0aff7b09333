"""The one HTTP transport of tfhub: sessions, the retry policy, transfer guards, error mapping.

Every request tfhub makes goes through here (the tarball, its resumes, the fast path's
manifest and blocks, the publish client):

* :func:`session` - TLS verified unless ``TFHUB_DISABLE_CERT_VALIDATION`` is set, proxies from
  the environment (``https_proxy``, ``no_proxy``, ...);
* :class:`Retry` - the one retry policy, immutable like urllib3's ``Retry``: connection errors,
  timeouts and 408/425/429/5xx are retried with capped exponential backoff and jitter,
  ``Retry-After`` honoured up to a cap; a TLS failure or an unknown host name is not;
* :func:`open_response` / :func:`get` - a streamed GET with a connect and read timeout
  (``TFHUB_HTTP_TIMEOUT``) spending one shared retry budget, so that loops which restart a
  broken body continue the same budget instead of multiplying it;
* :class:`TransferGuard` - a minimum average rate (``TFHUB_HTTP_MIN_RATE`` over each
  ``TFHUB_HTTP_TIMEOUT`` window) and an overall deadline (``TFHUB_DOWNLOAD_DEADLINE``) for one
  download, however many connections and retries it uses;
* :func:`translate` - the one place where foreign exceptions (requests, urllib3, socket, ssl,
  botocore, fsspec) become tfhub errors with a message that says what to do.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import urllib3

from tfhub import config
from tfhub.errors import (
    DownloadError,
    HubError,
    ModelNotFoundError,
    ProtocolError,
    RemoteNotFoundError,
    SlowTransferError,
)
from tfhub.version import version

__all__ = [
    "BROKEN_TRANSFER",
    "USER_AGENT",
    "Retry",
    "TransferGuard",
    "get",
    "is_transient",
    "open_response",
    "read_some",
    "session",
    "translate",
]

logger = logging.getLogger(__name__)

USER_AGENT = f"tfhub/{version()} (+hosting-protocol client)"

# Errors while connecting or reading a body that mean "the transfer broke off" (transient).
BROKEN_TRANSFER: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


@dataclasses.dataclass(frozen=True)
class Retry:
    """How many more attempts a transfer may make, and how long to wait before each one.

    Immutable: :meth:`increment` returns the policy for the next attempt (or raises when the
    budget is spent), so a budget can be handed from one loop to the next without being
    multiplied.
    """

    total: int
    status_forcelist: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    attempt: int = 0  # attempts already retried

    @classmethod
    def from_config(cls) -> Retry:
        """The policy of the current settings (``TFHUB_HTTP_RETRIES``)."""
        return cls(total=config.http_retries())

    def is_retryable_status(self, status: int) -> bool:
        return status in self.status_forcelist

    @property
    def exhausted(self) -> bool:
        return self.total <= 0

    def increment(self) -> Retry:
        """The policy after one more failed attempt.

        Raises:
            ValueError: none are left (callers check :attr:`exhausted` first).
        """
        if self.exhausted:
            raise ValueError("no retries left")
        return dataclasses.replace(self, total=self.total - 1, attempt=self.attempt + 1)

    def backoff(self, retry_after: str | None = None) -> float:
        """Seconds to wait before the next attempt: ``Retry-After`` (seconds, capped) when the
        server sent one, else capped exponential backoff with jitter."""
        if retry_after:
            try:
                seconds = float(retry_after)
            except ValueError:  # an HTTP date or garbage: use our own schedule
                seconds = math.nan
            if math.isfinite(seconds):
                return max(0.0, min(seconds, self.retry_after_max))
        delay: float = min(self.backoff_max, self.backoff_factor * 2.0**self.attempt)
        return delay * (0.5 + random.random() / 2)

    def sleep(self, retry_after: str | None = None, guard: TransferGuard | None = None) -> None:
        delay = self.backoff(retry_after)
        if guard is not None:
            guard.check_deadline(extra=delay)
        time.sleep(delay)


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


class TransferGuard:
    """Fails a download that averages under ``min_rate`` bytes/s over any ``window`` seconds,
    or that runs past ``deadline`` seconds in all. Shared by every connection of a download
    (thread-safe); call :meth:`received` with each chunk's size."""

    def __init__(
        self,
        handle: str,
        url: str,
        *,
        min_rate: float | None = None,
        window: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self.handle = handle
        self.url = url
        self.min_rate = config.http_min_rate() if min_rate is None else min_rate
        self.window = config.http_timeout() if window is None else window
        self.deadline = config.download_deadline() if deadline is None else deadline
        self._start = self._window_start = time.monotonic()
        self._bytes = self._window_bytes = 0
        self._lock = threading.Lock()

    def restart(self) -> None:
        """Starts a new rate window (a new response has just begun: the time spent waiting
        for it, retries and backoff included, is the deadline's business, not the rate's)."""
        with self._lock:
            self._window_start, self._window_bytes = time.monotonic(), self._bytes

    def check_deadline(self, extra: float = 0.0) -> None:
        """Raises if the deadline has passed (or would, after ``extra`` seconds of waiting)."""
        if self.deadline is None:
            return
        elapsed = time.monotonic() - self._start
        if elapsed + extra > self.deadline:
            raise SlowTransferError(
                f"The download of {self.handle} from {self.url} did not finish within "
                f"{self.deadline:g} s (TFHUB_DOWNLOAD_DEADLINE; {self._bytes} bytes received). "
                "Try again later or from a faster network, or raise the deadline.",
                handle=self.handle,
                url=self.url,
            )

    def received(self, n: int) -> None:
        """Counts ``n`` bytes just received, and raises if the transfer is too slow."""
        now = time.monotonic()
        with self._lock:
            self._bytes += n
            span = now - self._window_start
            if span >= self.window > 0:
                got = self._bytes - self._window_bytes
                if self.min_rate and got < self.min_rate * span:
                    raise SlowTransferError(
                        f"The download of {self.handle} from {self.url} is too slow: {got} "
                        f"bytes in the last {span:.1f} s, under TFHUB_HTTP_MIN_RATE="
                        f"{self.min_rate:g} bytes/s. Try again later or from a faster network; "
                        "lower TFHUB_HTTP_MIN_RATE (0 turns the check off) if this link is "
                        "really that slow.",
                        handle=self.handle,
                        url=self.url,
                    )
                self._window_start, self._window_bytes = now, self._bytes
        self.check_deadline()


def read_some(raw: Any, n: int, guard: TransferGuard | None) -> bytes:
    """What has arrived of the body ``raw`` (at most ``n`` bytes, at most one socket read, so
    a trickling server cannot hold a call for long), counted by ``guard``. An identity body
    skips urllib3's decoding buffer (it copied every byte once or twice more)."""
    coded = raw.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity")
    chunk: bytes = raw.read1(n, decode_content=raw.decode_content and coded)
    if guard is not None:
        guard.received(len(chunk))
    return chunk


# --- errors ----------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (causes, contexts, urllib3 reasons, exception args)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(x for x in inner if isinstance(x, BaseException))


def _is_name_resolution(exc: BaseException) -> bool:
    return any(
        isinstance(e, (socket.gaierror, urllib3.exceptions.NameResolutionError))
        for e in _causes(exc)
    )


def _is_tls(exc: BaseException) -> bool:
    return any(
        isinstance(e, (requests.exceptions.SSLError, ssl.SSLError, urllib3.exceptions.SSLError))
        for e in _causes(exc)
    )


def _backend(exc: BaseException) -> str:
    """``"botocore"``, ``"google"``, ... for a storage backend's own exception, else ``""``."""
    return type(exc).__module__.split(".")[0]


def translate(
    exc: BaseException, *, handle: str, url: str | None = None, attempts: int = 1
) -> HubError:
    """The tfhub error for a foreign exception raised while fetching ``handle`` (after
    ``attempts`` tries). Our own errors pass through unchanged."""
    if isinstance(exc, HubError):
        return exc
    where = f"{url} (for {handle})" if url and url != handle else handle
    if _is_tls(exc):
        return DownloadError(
            f"TLS verification failed for {where}: {exc}. Fix the server's certificate or point "
            "REQUESTS_CA_BUNDLE at your CA; as a last resort set "
            "TFHUB_DISABLE_CERT_VALIDATION=true.",
            handle=handle,
            url=url,
        )
    if _is_name_resolution(exc):
        host = urllib3.util.parse_url(url or handle).host
        return DownloadError(
            f"Could not resolve the host name {host!r} of {where}: {exc}. Check the network "
            "connection and the handle's spelling; to work without a network set "
            "TFHUB_OFFLINE=1 (models already in the cache are used), or point the handle at a "
            "mirror you can reach.",
            handle=handle,
            url=url,
        )
    if isinstance(exc, FileNotFoundError) or type(exc).__name__ in ("NoSuchKey", "NoSuchBucket"):
        return ModelNotFoundError(f"{where} does not exist.", handle=handle)
    if isinstance(exc, PermissionError) or type(exc).__name__ in (
        "NoCredentialsError",
        "PartialCredentialsError",
    ):
        return DownloadError(
            f"Access to {where} was refused: {exc}. Check the credentials (environment, "
            "profile) and the bucket's permissions.",
            handle=handle,
            url=url,
        )
    if isinstance(exc, BROKEN_TRANSFER):
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return DownloadError(
            f"The download of {where} failed{tries}: {exc}. Check the network and proxy "
            "settings (https_proxy) and try again.",
            handle=handle,
            url=url,
        )
    if _backend(exc) in ("botocore", "boto3", "s3fs", "gcsfs", "google", "fsspec", "aiohttp"):
        return DownloadError(
            f"Could not read {where}: {exc}. Check the credentials and the bucket name.",
            handle=handle,
            url=url,
        )
    return DownloadError(f"Could not download {where}: {exc}.", handle=handle, url=url)


def _retryable(exc: BaseException) -> bool:
    return (
        isinstance(exc, BROKEN_TRANSFER)
        and not isinstance(exc, HubError)  # DownloadError is a ConnectionError too
        and not _is_tls(exc)
        and not _is_name_resolution(exc)
    )


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same download later may succeed (network, slowness, interruption),
    so that its verified partial state is worth keeping. A server's refusal, a missing model,
    a protocol violation or a corrupt block is not."""
    if isinstance(exc, (KeyboardInterrupt, SlowTransferError)):
        return True
    if isinstance(exc, (ProtocolError, RemoteNotFoundError)) or not isinstance(
        exc, (DownloadError, *BROKEN_TRANSFER)
    ):
        return False
    if isinstance(exc, DownloadError):
        if exc.status is not None:
            return exc.status in Retry(0).status_forcelist
        return not (_is_tls(exc) or _is_name_resolution(exc))
    return _retryable(exc)


_MAX_ERROR_BODY = 4096


def _server_message(resp: requests.Response) -> str:
    """The server's explanation in an error response (the ``error`` of a JSON body, or short
    plain text), or ""."""
    try:
        body = resp.raw.read(_MAX_ERROR_BODY, decode_content=True)
    except Exception:
        return ""
    text = body.decode("utf8", "replace").strip()
    kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind.endswith("json"):
        try:
            doc = json.loads(text)
        except ValueError:
            return ""
        message = doc.get("error") or doc.get("detail") if isinstance(doc, dict) else None
        text = message if isinstance(message, str) else ""
    elif kind != "text/plain":
        return ""
    text = " ".join(text.split())
    return text[:500] + ("..." if len(text) > 500 else "")


def status_error(handle: str, url: str, resp: requests.Response) -> DownloadError:
    """The error for an HTTP status >= 400, with the server's own message when it sent one."""
    status = resp.status_code
    where = url if url == handle else f"{url} (for {handle})"
    said = _server_message(resp)
    said = f' ("{said}")' if said else ""
    if status in (404, 410):
        return RemoteNotFoundError(
            f"{where}: the server answered {status} {resp.reason}{said}; check the publisher, "
            "model name and version in the handle.",
            handle=handle,
            url=url,
            status=status,
        )
    hint = {
        401: "the server wants credentials",
        403: "access is forbidden (credentials, or a signed URL that expired)",
    }.get(status, "try again later, or check the server")
    return DownloadError(
        f"{where}: the server answered {status} {resp.reason}{said}; {hint}.",
        handle=handle,
        url=url,
        status=status,
    )


def open_response(
    url: str,
    *,
    handle: str,
    sess: requests.Session,
    retry: Retry,
    headers: dict[str, str] | None = None,
    allow_redirects: bool = True,
    raise_for_status: bool = True,
    guard: TransferGuard | None = None,
    exact: bool = False,
    credentials: bool = True,
) -> tuple[requests.Response, Retry]:
    """A streamed GET of ``url`` (timeouts from the settings) retried within ``retry``.

    With ``exact``, ``url`` is sent byte for byte as given (a signed URL from a ``Location``
    header: requests would re-quote it, e.g. ``%7E`` to ``~``, and break its signature); with
    ``credentials=False`` no ``Authorization`` or ``Cookie`` header goes with it (from
    ``.netrc`` or anywhere else). With either, no redirect is followed.

    Returns:
        The response (the caller closes it) and the retry budget that is left.

    Raises:
        RemoteNotFoundError: 404 or 410 (with ``raise_for_status``).
        DownloadError: any other failure, after the budget is spent; at once for TLS and
            host-name failures.
    """
    timeout = config.http_timeout()
    while True:
        if guard is not None:
            guard.check_deadline()
        try:
            prepared = sess.prepare_request(requests.Request("GET", url, headers=headers))
            if exact:
                prepared.url = url  # not re-quoted
            if not credentials:
                for name in ("Authorization", "Cookie"):
                    prepared.headers.pop(name, None)
            # verify is explicit, so that REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
            # environment cannot turn verification back on once the user has disabled it.
            settings = sess.merge_environment_settings(url, {}, True, sess.verify, None)
            resp = sess.send(
                prepared,
                allow_redirects=allow_redirects and credentials and not exact,
                timeout=(timeout, timeout),
                **settings,
            )
        except Exception as exc:
            if not _retryable(exc) or retry.exhausted:
                raise translate(exc, handle=handle, url=url, attempts=retry.attempt + 1) from exc
            logger.info("Retrying %s after %s", url, exc)
            retry.sleep(None, guard)
            retry = retry.increment()
            continue
        if retry.is_retryable_status(resp.status_code) and not retry.exhausted:
            logger.info("Retrying %s after status %s", url, resp.status_code)
            resp.close()
            retry.sleep(resp.headers.get("Retry-After"), guard)
            retry = retry.increment()
            continue
        if guard is not None:
            guard.restart()
        if raise_for_status and resp.status_code >= 400:
            try:
                raise status_error(handle, resp.url or url, resp)
            finally:
                resp.close()
        return resp, retry


@contextmanager
def get(
    url: str,
    *,
    handle: str,
    allow_redirects: bool = True,
    headers: dict[str, str] | None = None,
    sess: requests.Session | None = None,
    raise_for_status: bool = True,
    retry: Retry | None = None,
    guard: TransferGuard | None = None,
) -> Iterator[requests.Response]:
    """:func:`open_response` as a block: the response (and a session made for it) is closed
    when the block ends."""
    own = sess is None
    s = sess or session()
    try:
        resp, _ = open_response(
            url,
            handle=handle,
            sess=s,
            retry=retry or Retry.from_config(),
            headers=headers,
            allow_redirects=allow_redirects,
            raise_for_status=raise_for_status,
            guard=guard,
        )
        try:
            yield resp
        finally:
            resp.close()
    finally:
        if own:
            s.close()
