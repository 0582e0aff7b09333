"""Which redirects the fast path follows (:mod:`tfhub.handles.fastpath`).

A hub may answer a file's range request with a redirect, e.g. to a short-lived presigned
URL of its S3 storage. The fast path follows it only:

* to http(s), never from https down to http;
* never to a link-local or unspecified address (cloud metadata services live there), nor to
  a loopback address (or ``localhost``) unless the hub itself is on this machine;
* at most :data:`MAX_REDIRECTS` hops;
* off the manifest's origin, in a session of its own: no token, no cookie of the hub.

Why this keeps the protection that "files come only from the manifest's origin" gave
against server-side request forgery: what a redirect target answers is written only if
every block matches the sha256 that the hub's manifest named, so a hub cannot make the
client fetch (and install, or hand back) anything it did not already know byte for byte.
What is left is a blind GET without credentials, which the archive path (and
``tensorflow_hub``) has always allowed through redirects. Host names are not resolved here
(a name that resolves to an internal address is followed); the same hash rule holds.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests

from tfhub import transport
from tfhub.errors import ProtocolError
from tfhub.transport import Retry, TransferGuard

__all__ = ["MAX_REDIRECTS", "open_range", "origin", "redirect_target"]

MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, lower-case, with the scheme's default port.

    Raises:
        ValueError: a bad port.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)  # ValueError: a bad port
    return scheme, (parts.hostname or "").lower(), port


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    address = _ip(host)
    return host == "localhost" if address is None else address.is_loopback


def redirect_target(handle: str, path: str, file_url: str, url: str, location: str) -> str:
    """The absolute URL of ``location`` (the redirect that ``url`` answered for the model
    file ``path``, first requested at ``file_url``) if the fast path may follow it.

    Raises:
        ProtocolError: the redirect breaks the rule of the module doc.
    """
    target = urllib.parse.urljoin(url, location)
    try:
        scheme, host, _port = origin(target)
        was_scheme = origin(url)[0]
        hub_host = origin(file_url)[1]
    except ValueError:
        scheme = host = was_scheme = hub_host = ""
    address = _ip(host)
    why = None
    if not location or scheme not in ("http", "https") or not host:
        why = "not an http(s) URL"
    elif was_scheme == "https" and scheme == "http":
        why = "a downgrade from https to http"
    elif address is not None and (address.is_link_local or address.is_unspecified):
        why = "a link-local or unspecified address"
    elif _is_loopback(host) and not _is_loopback(hub_host):
        why = "a loopback address, from a hub that is not on this machine"
    if why is not None:
        raise ProtocolError(
            f"{url} redirected the download of {path} to {location[:200]!r}, {why}; the "
            "fast path does not follow it (set TFHUB_FAST_PATH=0 to download the tarball, "
            "and tell the hub's operator).",
            handle=handle,
            url=url,
        )
    return target


def open_range(
    handle: str,
    path: str,
    file_url: str,
    byte_range: tuple[int, int],
    sessions: Callable[[str], requests.Session],
    *,
    retry: Retry,
    guard: TransferGuard,
) -> tuple[Any, Retry]:
    """The response to a request for bytes ``byte_range`` (inclusive) of the model file
    ``path`` at ``file_url``, each redirect checked (:func:`redirect_target`) before it is
    followed; on the hub's origin with ``sessions("hub")``, elsewhere ``sessions("plain")``
    (a session without the hub's credentials). The caller closes the response; after
    :data:`MAX_REDIRECTS` hops it gets the last redirect itself."""
    url = file_url
    home = origin(file_url)
    for hop in range(MAX_REDIRECTS + 1):
        resp, retry = transport.open_response(
            url,
            handle=handle,
            sess=sessions("hub" if origin(url) == home else "plain"),
            retry=retry,
            headers={"Range": f"bytes={byte_range[0]}-{byte_range[1]}"},
            allow_redirects=False,  # each hop is checked here
            guard=guard,
        )
        if resp.status_code not in _REDIRECTS or hop == MAX_REDIRECTS:
            break
        location = resp.headers.get("Location", "")
        resp.close()
        url = redirect_target(handle, path, file_url, url, location)
    return resp, retry
