"""The hub server's settings (listed with every other one in :mod:`tfhub.config`, which
re-exports these functions: call them as ``config.<name>()``)."""

from __future__ import annotations

import os
from pathlib import Path

from tfhub.config._env import _env_number, env_flag
from tfhub.errors import ConfigError

__all__ = [
    "accel_redirect",
    "allow_unsafe_ops",
    "catalog_reconcile_seconds",
    "database_url",
    "header_timeout",
    "max_connections_per_client",
    "max_unpacked_bytes",
    "max_upload_bytes",
    "private_namespaces",
    "public_url",
    "publish_token",
    "redirect_downloads",
    "redirect_expiry",
    "token_file",
]


def publish_token() -> str | None:
    """``TFHUB_PUBLISH_TOKEN``: a server token that may publish for every publisher."""
    return os.environ.get("TFHUB_PUBLISH_TOKEN", "").strip() or None


def token_file() -> Path | None:
    """``TFHUB_TOKEN_FILE``: the server's file of ``<token> <publisher>[,...]`` lines."""
    raw = os.environ.get("TFHUB_TOKEN_FILE", "").strip()
    return Path(raw).expanduser() if raw else None


def allow_unsafe_ops() -> bool:
    """``TFHUB_ALLOW_UNSAFE_OPS``: the server publishes models whose op scan has findings."""
    return env_flag("TFHUB_ALLOW_UNSAFE_OPS")


def max_upload_bytes() -> int:
    """``TFHUB_MAX_UPLOAD_BYTES``: the largest upload the server accepts (default 8 GiB)."""
    return int(_env_number("TFHUB_MAX_UPLOAD_BYTES", float(8 << 30), minimum=1))


def max_unpacked_bytes() -> int:
    """``TFHUB_MAX_UNPACKED_BYTES``: the largest unpacked size of one upload (default 16 GiB);
    the server stops extracting (and refuses with 413) past it."""
    return int(_env_number("TFHUB_MAX_UNPACKED_BYTES", float(16 << 30), minimum=1))


def public_url() -> str | None:
    """``TFHUB_PUBLIC_URL``: the hub's URL as users reach it (``https://hub.example.com``),
    used in the snippets of the model pages; never taken from a request's ``Host``.

    Raises:
        ConfigError: not an absolute http(s) URL.
    """
    raw = os.environ.get("TFHUB_PUBLIC_URL", "").strip()
    if not raw:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"TFHUB_PUBLIC_URL={raw!r} is not valid; use an absolute http(s) URL such as "
            "https://hub.example.com (no query or fragment)."
        )
    return raw.rstrip("/")


def header_timeout() -> float:
    """``TFHUB_HEADER_TIMEOUT``: seconds a connection may take to send a complete request head
    (request line and headers); slower or idle connections are closed (default 10)."""
    return _env_number("TFHUB_HEADER_TIMEOUT", 10.0, minimum=0.1)


def max_connections_per_client() -> int:
    """``TFHUB_MAX_CONNECTIONS_PER_CLIENT``: open connections one client address may hold;
    more are answered 503 and closed (default 64; raise it behind a reverse proxy)."""
    return int(_env_number("TFHUB_MAX_CONNECTIONS_PER_CLIENT", 64, minimum=1))


def private_namespaces() -> frozenset[str]:
    """``TFHUB_PRIVATE_NAMESPACES``: publishers whose every model is private (comma-separated).

    Raises:
        ConfigError: an entry is not a publisher name.
    """
    raw = os.environ.get("TFHUB_PRIVATE_NAMESPACES", "")
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    import re

    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ConfigError(
                f"TFHUB_PRIVATE_NAMESPACES entry {name!r} is not a publisher name; give "
                "publishers separated by commas, e.g. acme,research."
            )
    return names


def database_url() -> str | None:
    """``TFHUB_DATABASE_URL``: the hub's catalog database, ``postgresql://user@host/db``
    (shared by replicas) or ``sqlite:///path/to/catalog.sqlite3``; unset: a SQLite file next
    to a directory root (``<root>.catalog.sqlite3``) or in the user's data directory for a
    bucket.

    Raises:
        ConfigError: another scheme.
    """
    raw = os.environ.get("TFHUB_DATABASE_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ConfigError(
            f"TFHUB_DATABASE_URL={raw.split('@')[-1]!r} is not valid; use "
            "postgresql://user:password@host:port/database or sqlite:///path/to/file."
        )
    return raw


def accel_redirect() -> str | None:
    """``TFHUB_ACCEL_REDIRECT``: with local storage behind nginx, the URI prefix of an
    ``internal`` nginx location aliased to the storage root (e.g. ``/_tfhub_files/``); the
    server then answers archive and blob downloads with ``X-Accel-Redirect`` and nginx sends
    the bytes. Unset: the server sends them itself.

    Raises:
        ConfigError: not a path that starts and ends with ``/``.
    """
    import re

    raw = os.environ.get("TFHUB_ACCEL_REDIRECT", "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"/([A-Za-z0-9_.~-]+/)+", raw, re.ASCII):
        raise ConfigError(
            f"TFHUB_ACCEL_REDIRECT={raw!r} is not valid; use the path of nginx's internal "
            "location, starting and ending with '/', such as /_tfhub_files/."
        )
    return raw


def catalog_reconcile_seconds() -> float:
    """``TFHUB_CATALOG_RECONCILE_SECONDS``: how often the server lists the storage's records
    and indexes those missing from the catalog (default 60; 0 turns it off)."""
    return _env_number("TFHUB_CATALOG_RECONCILE_SECONDS", 60.0, minimum=0.0)


def redirect_downloads() -> bool:
    """``TFHUB_REDIRECT_DOWNLOADS``: ``1`` makes a hub on S3 answer archive and blob downloads
    with a redirect to a short-lived presigned URL of the object (default off)."""
    return env_flag("TFHUB_REDIRECT_DOWNLOADS")


def redirect_expiry() -> int:
    """``TFHUB_REDIRECT_EXPIRY``: seconds a presigned download URL stays valid (default 300,
    at most 7 days, S3's limit)."""
    seconds = int(_env_number("TFHUB_REDIRECT_EXPIRY", 300, minimum=1))
    if seconds > 7 * 24 * 3600:
        raise ConfigError(
            f"TFHUB_REDIRECT_EXPIRY={seconds} is too long; S3 accepts at most 604800 (7 days)."
        )
    return seconds
