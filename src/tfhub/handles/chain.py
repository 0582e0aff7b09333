"""Upstream handles (tfhub.dev, Kaggle, the China mirror) and the handle map, in resolution.

On the wire this does what ``tensorflow_hub`` 0.16 does (``compressed_module_resolver.py``):
``GET <handle>?tf-hub-format=compressed`` and follow the redirects (tfhub.dev → Kaggle → a
signed storage URL) to the tarball; a ``hub.tensorflow.google.cn`` handle is fetched straight
from ``gcs.tensorflow.google.cn``. The model is cached under ``sha1(handle)``, the directory
``tensorflow_hub`` uses for the same handle string. What we add:

* redirects are followed here, hop by hop: a ``Location`` is requested byte for byte as sent
  (a signed query must not be re-encoded), and a hop to another origin than the handle's
  carries no ``Authorization`` or ``Cookie`` (not even from ``.netrc``);
* a hop reached by a redirect that answers 403 or 400 (an expired or refused signature) is not
  retried: the chain starts again from the handle, at most :data:`MAX_RESTARTS` times;
* the two spellings of a Kaggle model share one entry: an entry under either (or under any
  case of it, found through the descriptors) is reused;
* the handle map (:func:`tfhub.handles.upstream.rewrite`) sends a handle elsewhere; an entry
  cached under the original handle or under the rewritten one is reused either way;
* offline, another client's cache may serve the handle (:mod:`tfhub.handles.foreign`).
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tfhub import config, protocol, transport
from tfhub.errors import InvalidHandleError, OfflineError, ProtocolError
from tfhub.handles import cache, foreign, upstream
from tfhub.handles.http import append_format_query, download_archive, is_http
from tfhub.handles.registry import resolver
from tfhub.transport import Retry, TransferGuard

__all__ = [
    "MAX_HOPS",
    "MAX_RESTARTS",
    "UpstreamResolver",
    "cached",
    "fetch",
    "open_archive",
    "open_chain",
]

logger = logging.getLogger(__name__)

MAX_HOPS = 10
MAX_RESTARTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _next_url(current: str, location: str, handle: str) -> str:
    target = (
        location if "://" in location.split("?", 1)[0] else urllib.parse.urljoin(current, location)
    )
    if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
        raise ProtocolError(
            f"{current} redirected to {location!r}, which is not an http(s) URL.",
            handle=handle,
            url=current,
        )
    return target


def open_chain(
    handle: str,
    url: str,
    sess: requests.Session,
    retry: Retry,
    headers: dict[str, str] | None,
    guard: TransferGuard,
) -> tuple[requests.Response, Retry, bool]:
    """Requests ``url`` and follows its redirects (see the module docstring).

    Returns:
        The final response, the retry budget left, and whether it was reached by a redirect
        (its URL is then resumed exactly and without credentials).
    """
    origin = _origin(url)
    restarts = 0
    while True:
        current, hops = url, 0
        while True:
            resp, retry = transport.open_response(
                current,
                handle=handle,
                sess=sess,
                retry=retry,
                headers=headers,
                guard=guard,
                raise_for_status=False,
                allow_redirects=False,
                exact=hops > 0,
                credentials=_origin(current) == origin,
            )
            location = resp.headers.get("Location")
            if resp.status_code in _REDIRECTS and location:
                resp.close()
                hops += 1
                if hops > MAX_HOPS:
                    raise ProtocolError(
                        f"{url} redirected more than {MAX_HOPS} times; check the handle.",
                        handle=handle,
                        url=url,
                    )
                current = _next_url(current, location, handle)
                continue
            break
        if hops and resp.status_code in (400, 403) and restarts < MAX_RESTARTS:
            logger.info(
                "%s answered %s (an expired signed URL?); starting again from %s",
                current.split("?", 1)[0],
                resp.status_code,
                url,
            )
            resp.close()
            restarts += 1
            continue
        if resp.status_code >= 400:
            try:
                raise transport.status_error(handle, current, resp)
            finally:
                resp.close()
        return resp, retry, hops > 0


@contextmanager
def open_archive(handle: str) -> Iterator[requests.Response]:
    """The response carrying the upstream tarball of ``handle`` (through the whole chain, as
    :func:`fetch` gets it), for a caller that keeps the archive itself (``mirror pull``: its
    sha256 and size). Read it with ``resp.raw.read``; it is closed when the block ends."""
    url = upstream.cn_archive_url(handle) or append_format_query(handle, protocol.COMPRESSED)
    sess = transport.session()
    guard = TransferGuard(handle, url)
    try:
        resp, _, _ = open_chain(handle, url, sess, Retry.from_config(), None, guard)
        with resp:
            yield resp
    finally:
        sess.close()


def fetch(handle: str, dest: Path) -> cache.Manifest:
    """Downloads the upstream model ``handle`` into ``dest`` the way tensorflow_hub does."""
    direct = upstream.cn_archive_url(handle)
    if direct is not None:
        return download_archive(handle, direct, dest)
    url = append_format_query(handle, protocol.COMPRESSED)

    def opener(
        sess: requests.Session, retry: Retry, headers: dict[str, str] | None, guard: TransferGuard
    ) -> tuple[requests.Response, Retry, bool]:
        return open_chain(handle, url, sess, retry, headers, guard)

    return download_archive(handle, url, dest, opener=opener)


def cached(handle: str, rewritten: str | None = None) -> str | None:
    """The cache entry serving ``handle``: under ``handle``, either Kaggle spelling (any
    case), or the ``rewritten`` handle; None on a miss."""
    keys = foreign.spellings(handle) + ([rewritten] if rewritten else [])
    for key in dict.fromkeys(keys):
        hit = cache.lookup(key)
        if hit is not None:
            return str(hit)
    parsed = upstream.parse_kaggle(handle)
    if parsed is None:
        return None
    root = config.cache_dir()
    try:
        names = [n for n in os.listdir(root) if n.endswith(cache.DESCRIPTOR_SUFFIX)]
    except OSError:
        return None
    for name in names:
        entry = root / name.removesuffix(cache.DESCRIPTOR_SUFFIX)
        other = cache.read_handle(entry)
        if other and other not in keys and upstream.normalize(other) == parsed.short:
            hit = cache.lookup(other)
            if hit is not None:
                return str(hit)
    return None


class UpstreamResolver:
    """Upstream handles (COMPRESSED/AUTO) and every handle the handle map rewrites."""

    def is_supported(self, handle: str) -> bool:
        if upstream.rewrite(handle)[1] is not None:
            return True
        compressed = config.model_load_format() is not config.LoadFormat.UNCOMPRESSED
        return compressed and is_http(handle) and upstream.is_upstream(handle)

    def __call__(self, handle: str) -> str:
        new, rule = upstream.rewrite(handle)
        if rule is not None:
            logger.info("Handle map: %s -> %s (rule %s)", handle, new, rule)
        hit = cached(handle, new if rule is not None else None)
        if hit is not None:
            return hit
        if config.offline():
            found = foreign.lookup(handle)
            if found is not None:
                return found
            if rule is None or upstream.is_upstream(new):
                raise OfflineError(
                    f"{handle} is not in the cache at {config.cache_dir()} (nor in a kagglehub "
                    "or tensorflow_hub cache) and TFHUB_OFFLINE is set; unset TFHUB_OFFLINE to "
                    "have it downloaded, or map it to your hub with TFHUB_HANDLE_MAP.",
                    handle=handle,
                )
        if rule is None:
            return str(cache.install(handle, lambda tmp: fetch(handle, tmp)))
        if upstream.is_upstream(new) and is_http(new):
            return str(cache.install(new, lambda tmp: fetch(new, tmp)))
        for impl in resolver.implementations:
            if not isinstance(impl, UpstreamResolver) and impl.is_supported(new):
                return impl(new)
        raise InvalidHandleError(
            f"The handle map rewrote {handle} to {new!r} (rule {rule}), which no resolver "
            "supports; fix the rule's new prefix.",
            handle=handle,
        )
