"""Cache administration: what ``tfhub cache list|rm|prune|verify`` shows and does.

The CLI only formats what these functions return. None of them takes an entry's lock: ``prune``
leaves alone everything of an entry whose download is running (a lock whose holder is alive,
or on another host), and never touches another user's files.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tfhub import config
from tfhub.errors import CacheError
from tfhub.handles.cache import lock as cachelock
from tfhub.handles.cache import trust
from tfhub.handles.cache.entries import (
    DESCRIPTOR_SUFFIX,
    LOCK_SUFFIX,
    MANIFEST_SUFFIX,
    PARTIAL_SUFFIX,
    check_entry,
    read_handle,
    sibling,
    verify_entry,
)
from tfhub.handles.cache.install import remove_entry

__all__ = ["CacheEntry", "list_entries", "prune", "remove", "verify"]

# Leftovers of an interrupted download or removal (temp dirs, trash, temp files, old locks).
_LEFTOVER_SUFFIXES = (".tmp", ".trash", ".tmpfile", ".old", PARTIAL_SUFFIX)


@dataclass(frozen=True)
class CacheEntry:
    """One model in the cache.

    Attributes:
        name: the entry's directory name, ``sha1(handle)``.
        path: the entry's directory.
        handle: the handle it caches (from its descriptor or manifest), None if unknown.
        size: bytes of all its regular files.
        files: how many regular files it holds.
        last_used: when it was last resolved (seconds since the epoch): the modification time
            of its descriptor, touched on each cache hit, else of its directory.
        problem: why it cannot be used (see :func:`check_entry`), None when complete.
        owner: who owns the directory (``"alice (uid 1000)"``).
    """

    name: str
    path: Path
    handle: str | None
    size: int
    files: int
    last_used: float
    problem: str | None
    owner: str

    @property
    def complete(self) -> bool:
        return self.problem is None


def _root(root: Path | None) -> Path:
    return root if root is not None else config.cache_dir()


def _describe(path: Path, st: os.stat_result) -> CacheEntry:
    problem = check_entry(path)
    size = files = 0
    if stat.S_ISDIR(st.st_mode) and trust.trusted(st, trust.policy(path.parent)):
        for dirpath, _, names in os.walk(path):
            for name in names:
                with contextlib.suppress(OSError):
                    child = os.lstat(os.path.join(dirpath, name))
                    if stat.S_ISREG(child.st_mode):
                        size += child.st_size
                        files += 1
    used = trust.lstat(sibling(path, DESCRIPTOR_SUFFIX)) or st
    return CacheEntry(
        name=path.name,
        path=path,
        handle=read_handle(path),
        size=size,
        files=files,
        last_used=used.st_mtime,
        problem=problem,
        owner=trust.owner_name(st),
    )


def list_entries(root: Path | None = None) -> list[CacheEntry]:
    """Every entry of the cache at ``root`` (default: ``TFHUB_CACHE_DIR``), by name."""
    root = _root(root)
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    entries = []
    for name in names:
        st = trust.lstat(root / name)
        if "." in name or st is None:
            continue
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            entries.append(_describe(root / name, st))
    return entries


def remove(handle_or_name: str, root: Path | None = None) -> list[CacheEntry]:
    """Removes the entries whose handle or directory name is ``handle_or_name``; returns them.

    Raises:
        CacheError: the file system does not let us remove one (named, with its owner).
    """
    removed = []
    for entry in list_entries(root):
        if handle_or_name in (entry.handle, entry.name):
            remove_entry(entry.path)
            removed.append(entry)
    return removed


def verify(root: Path | None = None) -> list[tuple[CacheEntry, list[str]]]:
    """Every entry with the problems a full re-hash against its manifest finds (none: ok)."""
    return [(entry, verify_entry(entry.path)) for entry in list_entries(root)]


def prune(root: Path | None = None) -> list[str]:
    """Removes incomplete entries and the leftovers of crashed downloads; returns their names.

    Only your own files are removed. A lock whose holder died on this host is removed with
    the temp directories, trash, ``.partial`` state and orphan manifests of its entry; while
    a lock's holder is alive (or on another host) nothing of that entry is touched.
    """
    root = _root(root)
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    removed: list[str] = []
    busy = set()
    for name in names:
        if name.endswith(LOCK_SUFFIX):
            if cachelock.remove_if_dead(root / name):
                removed.append(name)
            else:
                busy.add(name[: -len(LOCK_SUFFIX)])
    uid = os.geteuid()
    for name in names:
        base = name.split(".", 1)[0]
        path = root / name
        st = trust.lstat(path)
        if base in busy or name.endswith(LOCK_SUFFIX) or st is None or st.st_uid != uid:
            continue
        with contextlib.suppress(CacheError):
            if "." not in name:
                if check_entry(path) is not None:
                    remove_entry(path)
                    removed.append(name)
            elif name.endswith(_LEFTOVER_SUFFIXES) or (
                name.endswith((MANIFEST_SUFFIX, DESCRIPTOR_SUFFIX)) and base not in names
            ):
                trust.discard(path)
                removed.append(name)
    return removed
