"""The client's read tokens, each sent only to the hub origin it is configured for.

A token reaches a server only when the request goes to exactly the origin (scheme, host and
port) the token was set up for:

* ``TFHUB_CLIENT_TOKEN_FILE``: lines ``<origin> <token>`` (``#`` comments, blank lines), e.g.
  ``https://hub.example.com tfhub_...``;
* ``TFHUB_TOKEN``, sent to the origins listed in ``TFHUB_TOKEN_ORIGINS`` (unset: to none, so
  a publishing token set for one hub never reaches tfhub.dev, Kaggle or a bucket).

:func:`attach` mounts, on a session, one adapter per configured origin that adds
``Authorization: Bearer <token>`` to a copy of each request it sends to that origin. A
redirect is a new request through the adapter of its own origin: to another host or port it
goes without the token (the request requests re-sends is the one without it).
"""

from __future__ import annotations

import logging
import os
import stat
import urllib.parse
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tfhub import config
from tfhub.errors import ConfigError

__all__ = ["attach", "origin_of", "tokens"]

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) URL (the port made explicit), else None."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def tokens() -> dict[tuple[str, str, int], str]:
    """The configured tokens by origin (the file's line wins over ``TFHUB_TOKEN``).

    Raises:
        ConfigError: a bad line of ``TFHUB_CLIENT_TOKEN_FILE`` or ``TFHUB_TOKEN_ORIGINS``.
    """
    found: dict[tuple[str, str, int], str] = {}
    token = config.client_token()
    for raw in config.token_origins():
        origin = origin_of(raw)
        if token and origin is not None:
            found[origin] = token
    path = config.client_token_file()
    if path is not None:
        found.update(_read_file(path))
    return found


def _read_file(path: Path) -> dict[tuple[str, str, int], str]:
    try:
        text = path.read_text("utf8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"TFHUB_CLIENT_TOKEN_FILE {path}: cannot read it ({exc.strerror or exc}); fix the "
            "path or unset the variable."
        ) from exc
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("TFHUB_CLIENT_TOKEN_FILE %s is readable by other users; chmod 600 it.", path)
    found = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"TFHUB_CLIENT_TOKEN_FILE {path}:{number}"
        fields = line.split()
        if len(fields) != 2:
            raise ConfigError(f"{where}: expected '<origin> <token>', e.g. 'https://hub.x tok'.")
        origin = origin_of(config.check_origin(fields[0], where))
        assert origin is not None  # check_origin accepts only http(s)://host[:port]
        found[origin] = fields[1]
    return found


class _OriginToken(HTTPAdapter):
    """Sends ``token`` with the requests to ``origin`` (and to nothing else)."""

    def __init__(self, origin: tuple[str, str, int], token: str) -> None:
        super().__init__()
        self._origin = origin
        self._header = f"Bearer {token}"

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if request.url and origin_of(request.url) == self._origin:
            request = request.copy()  # the session's copy (redirects start from it) stays bare
            request.headers["Authorization"] = self._header
        return super().send(request, *args, **kwargs)


def attach(sess: requests.Session) -> requests.Session:
    """``sess``, sending each configured token to its own origin only; returns ``sess``."""
    for origin, token in tokens().items():
        scheme, host, port = origin
        shown = f"[{host}]" if ":" in host else host
        adapter = _OriginToken(origin, token)
        sess.mount(f"{scheme}://{shown}:{port}/", adapter)
        if port == _DEFAULT_PORTS[scheme]:
            sess.mount(f"{scheme}://{shown}/", adapter)
    return sess
