"""Every setting tfhub reads, in one place.

Settings come from environment variables and are read each time they are needed (never
frozen at import), so ``os.environ[...] = ...`` after ``import tfhub`` takes effect.

==================================  =========================================================
Variable                            Meaning
==================================  =========================================================
``TFHUB_CACHE_DIR``                 cache root (default: a persistent per-user directory)
``TFHUB_MODEL_LOAD_FORMAT``         ``COMPRESSED`` | ``UNCOMPRESSED`` | ``AUTO`` (= compressed)
``TFHUB_OFFLINE``                   ``1``: never touch the network, use the cache only
``TFHUB_DOWNLOAD_PROGRESS``         any non-empty value: show a progress bar on stderr
``TFHUB_DISABLE_CERT_VALIDATION``   ``true``: do not verify TLS certificates (warns)
``TFHUB_HTTP_TIMEOUT``              seconds to connect and between received bytes (default 30)
``TFHUB_HTTP_RETRIES``              retries of a failed request (default 4)
``TFHUB_LOCK_TIMEOUT``              seconds without progress before a lock is stale (600)
``TFHUB_MAX_MODEL_BYTES``           refuse archives that unpack to more bytes (default 64 GiB)
``TFHUB_VERIFY_CACHE``              ``1``: sha256-check cached files on every use, not just sizes
``TFHUB_CHECK_OPS``                 ``error`` | ``warn`` | ``off``: the op policy (default: error
                                    for remote handles, warn for local paths)
``TFHUB_FAST_PATH``                 ``0``: never ask tfhub servers for the per-file fast path
``TFHUB_DOWNLOAD_WORKERS``          parallel connections of the fast path (default 4)
``TFHUB_HTTP_MIN_RATE``             bytes/s a download must average over each
                                    ``TFHUB_HTTP_TIMEOUT`` window (default 1024; 0: off)
``TFHUB_DOWNLOAD_DEADLINE``         seconds one download may take in all (default 0: none)
``TFHUB_MAX_MODEL_FILES``           refuse archives/manifests with more members (100000)
``TFHUB_TOKEN``                     the token ``tfhub publish --server`` sends
``TFHUB_PUBLISH_TOKEN``             server: a token that may publish for every publisher
``TFHUB_TOKEN_FILE``                server: lines ``<token> <publisher>[,...]`` (``*``: all)
``TFHUB_ALLOW_UNSAFE_OPS``          server: ``1`` publishes models whose op scan has findings
``TFHUB_MAX_UPLOAD_BYTES``          server: largest accepted upload (default 8 GiB)
``TFHUB_MAX_UNPACKED_BYTES``        server: largest unpacked size of an upload (default 16 GiB)
``TFHUB_PUBLIC_URL``                server: the hub's URL as users reach it (page snippets)
``TFHUB_HEADER_TIMEOUT``            server: seconds to send a complete request head (10)
``TFHUB_MAX_CONNECTIONS_PER_CLIENT`` server: open connections per client address (64)
``TFHUB_ACCEL_REDIRECT``            server behind nginx: ``/prefix/`` of an internal location
                                    aliased to the storage root (X-Accel-Redirect)
``TFHUB_REDIRECT_DOWNLOADS``        server on S3: ``1`` answers downloads with a presigned URL
``TFHUB_REDIRECT_EXPIRY``           server: seconds a presigned download URL is valid (300)
==================================  =========================================================
"""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path

from tfhub.errors import ConfigError

__all__ = [
    "LoadFormat",
    "cache_dir",
    "cert_validation_disabled",
    "download_progress",
    "env_flag",
    "http_retries",
    "http_timeout",
    "lock_timeout",
    "max_model_bytes",
    "model_load_format",
    "offline",
    "verify_cache",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class LoadFormat(enum.Enum):
    """How http(s) handles are fetched (``TFHUB_MODEL_LOAD_FORMAT``)."""

    COMPRESSED = "COMPRESSED"
    UNCOMPRESSED = "UNCOMPRESSED"
    AUTO = "AUTO"


def env_flag(name: str, default: bool = False) -> bool:
    """Parses a boolean environment variable; the one boolean parser of tfhub.

    Raises:
        ConfigError: the value is not one of 1/0, true/false, yes/no, on/off.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def _env_number(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}.")
    return value


def default_cache_dir() -> Path:
    """The per-user persistent cache: ``$XDG_CACHE_HOME/tfhub/modules`` (or ``~/.cache/...``).

    The OS temp dir (``tensorflow_hub``'s default) is avoided on purpose: cleaners empty it
    and leave half-deleted models behind.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfhub" / "modules"


def cache_dir() -> Path:
    """The cache root: ``TFHUB_CACHE_DIR`` if set, else :func:`default_cache_dir`."""
    raw = os.environ.get("TFHUB_CACHE_DIR", "").strip()
    if raw.startswith("file://"):
        raw = raw[len("file://") :]
    return Path(raw).expanduser() if raw else default_cache_dir()


def model_load_format() -> LoadFormat:
    """``TFHUB_MODEL_LOAD_FORMAT``, validated (case-insensitive).

    Raises:
        ConfigError: the value is not COMPRESSED, UNCOMPRESSED or AUTO.
    """
    raw = os.environ.get("TFHUB_MODEL_LOAD_FORMAT", "").strip()
    if not raw:
        return LoadFormat.AUTO
    try:
        return LoadFormat(raw.upper())
    except ValueError:
        choices = ", ".join(f.value for f in LoadFormat)
        raise ConfigError(
            f"TFHUB_MODEL_LOAD_FORMAT={raw!r} is not valid; use one of {choices}."
        ) from None


def offline() -> bool:
    """``TFHUB_OFFLINE``: resolve from the cache only."""
    return env_flag("TFHUB_OFFLINE")


def download_progress() -> bool:
    """Whether to draw a download progress bar: asked for, or stderr is a terminal."""
    if os.environ.get("TFHUB_DOWNLOAD_PROGRESS", "").strip():
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def cert_validation_disabled() -> bool:
    """``TFHUB_DISABLE_CERT_VALIDATION``."""
    return env_flag("TFHUB_DISABLE_CERT_VALIDATION")


def http_timeout() -> float:
    """Seconds allowed to connect, and between two received bytes."""
    return _env_number("TFHUB_HTTP_TIMEOUT", 30.0, minimum=0.001)


def http_retries() -> int:
    """How many times a failed request is retried (transient errors only)."""
    return int(_env_number("TFHUB_HTTP_RETRIES", 4, minimum=0))


def download_workers() -> int:
    """``TFHUB_DOWNLOAD_WORKERS``: parallel connections of the fast path (default 4)."""
    return int(_env_number("TFHUB_DOWNLOAD_WORKERS", 4, minimum=1))


def fast_path() -> bool:
    """``TFHUB_FAST_PATH`` (default on): ask tfhub servers for the model's files one by one
    (parallel, verified per block, resumable) instead of the tarball."""
    return env_flag("TFHUB_FAST_PATH", default=True)


def lock_timeout() -> float:
    """Seconds a download lock may show no progress before another process takes it over."""
    return _env_number("TFHUB_LOCK_TIMEOUT", 600.0, minimum=0.0)


def verify_cache() -> bool:
    """``TFHUB_VERIFY_CACHE``: check every cached file's sha256 before each use."""
    return env_flag("TFHUB_VERIFY_CACHE")


def max_model_bytes() -> int:
    """Upper bound on the unpacked size of one model archive."""
    return int(_env_number("TFHUB_MAX_MODEL_BYTES", float(64 << 30), minimum=1))


def http_min_rate() -> float:
    """``TFHUB_HTTP_MIN_RATE``: bytes per second a download must average over every window of
    ``TFHUB_HTTP_TIMEOUT`` seconds, or it fails as too slow (default 1024; 0 turns it off)."""
    return _env_number("TFHUB_HTTP_MIN_RATE", 1024.0, minimum=0.0)


def download_deadline() -> float | None:
    """``TFHUB_DOWNLOAD_DEADLINE``: seconds one download may take from its first request to its
    last byte, retries included (default 0: no deadline)."""
    value = _env_number("TFHUB_DOWNLOAD_DEADLINE", 0.0, minimum=0.0)
    return value or None


def max_model_files() -> int:
    """``TFHUB_MAX_MODEL_FILES``: upper bound on the members of one model archive (files,
    directories) or files of a fast-path manifest (default 100000)."""
    return int(_env_number("TFHUB_MAX_MODEL_FILES", 100_000, minimum=1))


CHECK_OPS_MODES = ("error", "warn", "off")


def check_ops_mode() -> str | None:
    """``TFHUB_CHECK_OPS``: ``error``, ``warn`` or ``off``; None when unset (the op policy then
    picks ``error`` for remote handles and ``warn`` for local paths).

    Raises:
        ConfigError: any other value.
    """
    raw = os.environ.get("TFHUB_CHECK_OPS")
    if raw is None or not raw.strip():
        return None
    mode = raw.strip().lower()
    if mode not in CHECK_OPS_MODES:
        raise ConfigError(
            f"TFHUB_CHECK_OPS={raw!r} is not valid; use one of {', '.join(CHECK_OPS_MODES)}."
        )
    return mode


def client_token() -> str | None:
    """``TFHUB_TOKEN``: the bearer token ``tfhub publish --server`` sends (unset: none)."""
    return os.environ.get("TFHUB_TOKEN", "").strip() or None


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
