"""Offline reuse of models other clients cached: ``tensorflow_hub``'s default cache and
kagglehub's cache (read only, and only with ``TFHUB_OFFLINE`` set).

* ``tensorflow_hub`` keeps ``<sha1(handle)>/`` under ``<tempdir>/tfhub_modules`` when
  ``TFHUB_CACHE_DIR`` is unset (``resolver.tfhub_cache_dir(use_temp=True)``).
* kagglehub keeps ``models/<owner>/<model>/<framework>/<variation>/<version>/`` under
  ``KAGGLEHUB_CACHE`` (default ``~/.cache/kagglehub``), with the marker file
  ``<version>.complete`` beside a complete version; names keep the case the user typed, so
  they are matched without regard to case.

Another user of the machine may have made these directories (``/tmp`` is shared), so a
foreign entry is used only if its cache root, every directory down to it, and every file and
directory in it are real (no links), owned by us or root, and writable by nobody else (group
write is accepted only for our own primary group), the root's parent is not a world-writable
directory without the sticky bit (where anyone could swap the root); and it must pass the
cache's structural check (:func:`tfhub.handles.cache.check_entry`). The op policy treats the
result as the remote model it stands for (the handle is still the URL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from tfhub import config
from tfhub.handles import cache, upstream

__all__ = ["lookup", "spellings"]

logger = logging.getLogger(__name__)


def spellings(handle: str) -> list[str]:
    """``handle`` and, for a Kaggle handle, its normal short and long forms (one model)."""
    keys = [handle]
    parsed = upstream.parse_kaggle(handle)
    if parsed is not None:
        keys += [parsed.short, parsed.long]
    return list(dict.fromkeys(keys))


def _problem(path: Path, st: os.stat_result | None) -> str | None:
    if st is None:
        return f"{path} does not exist"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return f"{path} is not a regular file or directory"
    if st.st_uid not in (os.geteuid(), 0):
        return f"{path} belongs to uid {st.st_uid}"
    if st.st_mode & stat.S_IWOTH:
        return f"{path} is world-writable"
    if st.st_mode & stat.S_IWGRP and st.st_gid != os.getegid():
        return f"{path} is writable by group {st.st_gid}"
    return None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _untrusted(root: Path, top: Path) -> str | None:
    """Why ``top`` (under ``root``) may not be used, or None."""
    parent = _lstat(root.parent)
    if parent is None or (parent.st_mode & stat.S_IWOTH and not parent.st_mode & stat.S_ISVTX):
        return f"{root.parent} is missing, or world-writable without the sticky bit"
    chain = [root, *(root / p for p in _prefixes(top.relative_to(root)))]
    for path in chain:
        problem = _problem(path, _lstat(path))
        if problem is not None:
            return problem
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(dirpath, name)
            problem = _problem(path, _lstat(path))
            if problem is not None:
                return problem
    return None


def _prefixes(rel: Path) -> list[Path]:
    parts = rel.parts
    return [Path(*parts[: i + 1]) for i in range(len(parts))]


def _usable(root: Path, entry: Path, handle: str) -> bool:
    if _lstat(entry) is None:
        return False
    problem = _untrusted(root, entry) or cache.check_entry(entry)
    if problem is not None:
        logger.warning("Not using %s for %s: %s.", entry, handle, problem)
        return False
    return True


def _tensorflow_hub(handle: str) -> str | None:
    root = config.tensorflow_hub_default_cache_dir()
    if root == config.cache_dir():
        return None  # our own cache, already looked at
    for key in spellings(handle):
        entry = root / hashlib.sha1(key.encode("utf8")).hexdigest()
        if _usable(root, entry, handle):
            return str(entry)
    return None


def _match(directory: Path, name: str) -> list[Path]:
    """The children of ``directory`` whose name is ``name`` regardless of case."""
    try:
        return [directory / n for n in sorted(os.listdir(directory)) if n.lower() == name]
    except OSError:
        return []


def _kagglehub(handle: str) -> str | None:
    parsed = upstream.parse_kaggle(handle)
    if parsed is None:
        return None
    root = config.kagglehub_cache_dir()
    level = [root / "models"]
    for name in (parsed.owner, parsed.model, parsed.framework, parsed.variation):
        level = [child for d in level for child in _match(d, name)]
    for variation in level:
        entry = variation / parsed.version
        marker = variation / f"{parsed.version}.complete"
        if _problem(marker, _lstat(marker)) is None and _usable(root, entry, handle):
            return str(entry)
    return None


def lookup(handle: str) -> str | None:
    """The directory of ``handle``'s model in a kagglehub or ``tensorflow_hub`` default cache
    that may be used (see the module docstring), or None."""
    found = _kagglehub(handle) or _tensorflow_hub(handle)
    if found is not None:
        logger.info("Using %s for %s (offline, from another client's cache).", found, handle)
    return found
