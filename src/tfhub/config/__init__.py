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
``TFHUB_TOKEN``                     the token ``tfhub publish --server`` sends; also sent
                                    when loading from the origins of ``TFHUB_TOKEN_ORIGINS``
``TFHUB_TOKEN_ORIGINS``             ``https://hub.example.com[,...]``: the only origins that
                                    are sent ``TFHUB_TOKEN`` when loading models
``TFHUB_CLIENT_TOKEN_FILE``         lines ``<origin> <token>``: a read token per hub origin
``TFHUB_PUBLISH_TOKEN``             server: a token that may publish for every publisher
``TFHUB_TOKEN_FILE``                server: lines ``sha256:<hex> read=<ns>,.. publish=<ns>,..``
                                    (``tfhub token new``; old: ``<token> <publisher>[,...]``)
``TFHUB_PRIVATE_NAMESPACES``        server: ``<publisher>[,...]`` whose every model is private
``TFHUB_ALLOW_UNSAFE_OPS``          server: ``1`` publishes models whose op scan has findings
``TFHUB_MAX_UPLOAD_BYTES``          server: largest accepted upload (default 8 GiB)
``TFHUB_MAX_UNPACKED_BYTES``        server: largest unpacked size of an upload (default 16 GiB)
``TFHUB_PUBLIC_URL``                server: the hub's URL as users reach it (page snippets)
``TFHUB_HEADER_TIMEOUT``            server: seconds to send a complete request head (10)
``TFHUB_MAX_CONNECTIONS_PER_CLIENT`` server: open connections per client address (64)
``TFHUB_HANDLE_MAP``                ``OLD_PREFIX=NEW_PREFIX`` rules separated by whitespace:
                                    handles are rewritten before resolution (longest wins)
``TFHUB_HANDLE_MAP_FILE``           a file of such rules, one per line, ``#`` comments
``KAGGLEHUB_CACHE``                 kagglehub's cache, read (offline) for Kaggle handles
``TFHUB_DATABASE_URL``              server: the catalog database, ``postgresql://...`` or
                                    ``sqlite:///path`` (default: SQLite next to the root)
``TFHUB_CATALOG_RECONCILE_SECONDS`` server: seconds between checks of the storage for
                                    records missing from the catalog (60; 0: off)
``TFHUB_ACCEL_REDIRECT``            server behind nginx: ``/prefix/`` of an internal location
                                    aliased to the storage root (X-Accel-Redirect)
``TFHUB_REDIRECT_DOWNLOADS``        server on S3: ``1`` answers downloads with a presigned URL
``TFHUB_REDIRECT_EXPIRY``           server: seconds a presigned download URL is valid (300)
==================================  =========================================================
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from tfhub.config._env import _env_number, env_flag
from tfhub.config.server import (
    accel_redirect,
    allow_unsafe_ops,
    catalog_reconcile_seconds,
    database_url,
    header_timeout,
    max_connections_per_client,
    max_unpacked_bytes,
    max_upload_bytes,
    private_namespaces,
    public_url,
    publish_token,
    redirect_downloads,
    redirect_expiry,
    token_file,
)
from tfhub.errors import ConfigError

__all__ = [
    "LoadFormat",
    "accel_redirect",
    "allow_unsafe_ops",
    "cache_dir",
    "catalog_reconcile_seconds",
    "cert_validation_disabled",
    "database_url",
    "download_progress",
    "env_flag",
    "header_timeout",
    "http_retries",
    "http_timeout",
    "lock_timeout",
    "max_connections_per_client",
    "max_model_bytes",
    "max_unpacked_bytes",
    "max_upload_bytes",
    "model_load_format",
    "offline",
    "private_namespaces",
    "public_url",
    "publish_token",
    "redirect_downloads",
    "redirect_expiry",
    "token_file",
    "verify_cache",
]


class LoadFormat(enum.Enum):
    """How http(s) handles are fetched (``TFHUB_MODEL_LOAD_FORMAT``)."""

    COMPRESSED = "COMPRESSED"
    UNCOMPRESSED = "UNCOMPRESSED"
    AUTO = "AUTO"


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
    if _CACHE_DIR_OVERRIDE:
        return _CACHE_DIR_OVERRIDE[-1]
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


def _map_rule(text: str, origin: str, variable: str) -> tuple[str, str, str]:
    old, sep, new = text.partition("=")
    old, new = old.strip(), new.strip()
    if not sep or not old or not new or "=" in new or len(text.split()) != 1:
        raise ConfigError(
            f"{variable}: the rule {text!r} ({origin}) is not valid; write OLD_PREFIX=NEW_PREFIX, "
            "e.g. https://tfhub.dev/=https://hub.example.com/ (no spaces, one '=')."
        )
    return old, new, origin


def handle_map() -> list[tuple[str, str, str]]:
    """``TFHUB_HANDLE_MAP`` (``OLD=NEW`` rules separated by whitespace) followed by the rules of
    ``TFHUB_HANDLE_MAP_FILE`` (one per line; blank lines and ``#`` comments ignored), as
    ``(old_prefix, new_prefix, origin)`` where origin names the variable or ``file:line``.

    Raises:
        ConfigError: a malformed rule, or a map file that cannot be read.
    """
    found: list[tuple[str, str, str]] = []
    raw = os.environ.get("TFHUB_HANDLE_MAP", "")
    for text in raw.split():
        found.append(_map_rule(text, "TFHUB_HANDLE_MAP", "TFHUB_HANDLE_MAP"))
    path = os.environ.get("TFHUB_HANDLE_MAP_FILE", "").strip()
    if path:
        try:
            lines = Path(path).expanduser().read_text(encoding="utf8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"TFHUB_HANDLE_MAP_FILE={path!r} cannot be read ({exc}); point it at a text "
                "file of OLD_PREFIX=NEW_PREFIX lines."
            ) from None
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text.startswith("#"):
                continue
            text = text.split(" #", 1)[0].split("\t#", 1)[0].strip()
            if text:
                found.append(_map_rule(text, f"{path}:{number}", "TFHUB_HANDLE_MAP_FILE"))
    return found


def kagglehub_cache_dir() -> Path:
    """Where kagglehub caches models: ``KAGGLEHUB_CACHE``, else ``~/.cache/kagglehub`` (read
    only for offline reuse; kagglehub's own setting, not one of tfhub's)."""
    raw = os.environ.get("KAGGLEHUB_CACHE", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "kagglehub"


def tensorflow_hub_default_cache_dir() -> Path:
    """``tensorflow_hub``'s cache when ``TFHUB_CACHE_DIR`` is unset: ``<tempdir>/tfhub_modules``
    (read only for offline reuse)."""
    import tempfile

    return Path(tempfile.gettempdir()) / "tfhub_modules"


# Process-wide (threads of a download see it too): the innermost private_cache_dir() wins.
_CACHE_DIR_OVERRIDE: list[Path] = []


@contextlib.contextmanager
def private_cache_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Within the block, :func:`cache_dir` is ``path`` whatever ``TFHUB_CACHE_DIR`` says
    (``tfhub mirror pull`` downloads into a private temporary cache this way). Process-wide:
    meant for the command line, not for concurrent use by threads with different caches."""
    root = Path(path)
    _CACHE_DIR_OVERRIDE.append(root)
    try:
        yield root
    finally:
        _CACHE_DIR_OVERRIDE.remove(root)


def check_origin(raw: str, where: str) -> str:
    """``raw`` if it is an origin (``http(s)://host[:port]``), without a trailing ``/``.

    Raises:
        ConfigError: naming ``where`` (the setting or file line) and the accepted form.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = parts._replace(scheme="")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"{where}: {raw!r} is not an origin; use scheme://host[:port] such as "
            "https://hub.example.com or http://127.0.0.1:8000 (no path)."
        )
    return raw.rstrip("/")


def token_origins() -> tuple[str, ...]:
    """``TFHUB_TOKEN_ORIGINS``: the origins (``https://hub.example.com``, comma-separated) that
    are sent ``TFHUB_TOKEN`` when models are loaded; unset: it is sent to none.

    Raises:
        ConfigError: an entry is not ``http(s)://host[:port]``.
    """
    raw = os.environ.get("TFHUB_TOKEN_ORIGINS", "")
    items = [o.strip() for o in raw.split(",") if o.strip()]
    return tuple(check_origin(o, "TFHUB_TOKEN_ORIGINS") for o in items)


def client_token_file() -> Path | None:
    """``TFHUB_CLIENT_TOKEN_FILE``: the client's file of ``<origin> <token>`` lines (unset:
    none); each token is sent only to its origin."""
    raw = os.environ.get("TFHUB_CLIENT_TOKEN_FILE", "").strip()
    return Path(raw).expanduser() if raw else None
