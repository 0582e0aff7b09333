"""Storage keys, shared by every backend (:mod:`tfhub.server.storage`): what a valid key
is, and what a listing returns."""

from __future__ import annotations

import re
from typing import NamedTuple

from tfhub.errors import StorageError

__all__ = ["MAX_KEY_LENGTH", "StoredObject", "check_key", "check_prefix", "hidden"]

_KEY_PART_RE = re.compile(r"[A-Za-z0-9_.-]{1,255}", re.ASCII)
MAX_KEY_LENGTH = 1024


def check_key(key: str) -> str:
    """``key`` if it is a valid storage key; see the module doc.

    Raises:
        StorageError: the key is empty, too long, absolute, or has a part that is empty,
            ``.``/``..`` or not made of ASCII letters, digits, ``_``, ``.`` and ``-``.
    """
    parts = key.split("/") if isinstance(key, str) else [""]
    if len(key) > MAX_KEY_LENGTH or any(
        p in (".", "..") or not _KEY_PART_RE.fullmatch(p) for p in parts
    ):
        raise StorageError(
            f"Invalid storage key {key!r}: use ASCII name parts (letters, digits, '_', '.', "
            "'-') joined by '/', without '.' or '..' parts.",
            key=str(key),
        )
    return key


def check_prefix(prefix: str) -> str:
    """``""`` or a valid key followed by ``/``."""
    return "" if prefix == "" else check_key(prefix.removesuffix("/")) + "/"


class StoredObject(NamedTuple):
    """One object of a listing: its key, size in bytes and modification time (epoch s)."""

    key: str
    size: int
    mtime: float


def hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))
