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
``TFHUB_CHECK_OPS``                 ``warn`` | ``error`` | ``off``: ops that reach outside a model
``TFHUB_FAST_PATH``                 ``0``: never ask tfhub servers for the per-file fast path
``TFHUB_DOWNLOAD_WORKERS``          parallel connections of the fast path (default 4)
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


def check_ops_mode() -> str:
    """``TFHUB_CHECK_OPS``: ``warn`` (the default), ``error`` or ``off`` (any case)."""
    mode = os.environ.get("TFHUB_CHECK_OPS", "").strip().lower() or "warn"
    if mode not in ("warn", "error", "off"):
        raise ConfigError(f"TFHUB_CHECK_OPS={mode!r} is not valid; use warn, error or off.")
    return mode
