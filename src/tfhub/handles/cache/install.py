"""Installing a cache entry: under its lock, in a private temp directory, renamed into place.

The temp directory ``<sha1>.<uuid>.tmp`` is created 0700 (0750 in a group-shared cache, so
that members waiting on the lock see its progress), so nobody else can put anything in it
while it is filled; before it is renamed into place, every file in it must be a regular
file or directory (no links, devices or FIFOs), world-write bits are cleared, and the
directory gets the usual ``0777 & ~umask`` mode (a group-shared cache stays shared). Whatever
the cache does not trust (see :mod:`tfhub.handles.cache.trust`) where the entry, its
manifest, its descriptor or its ``.partial/`` state will go is removed first, or refused with
a :class:`~tfhub.errors.CacheError` naming its owner.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import shutil
import socket
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

from tfhub import config, protocol
from tfhub.errors import ArchiveError, CacheError, HubError, OfflineError
from tfhub.handles.cache import lock as cachelock
from tfhub.handles.cache import trust
from tfhub.handles.cache.entries import (
    DESCRIPTOR_SUFFIX,
    LOCK_SUFFIX,
    MANIFEST_SUFFIX,
    FileRecord,
    Manifest,
    check_entry,
    entry_path,
    lookup,
    partial_path,
    sibling,
    usable_problem,
)

__all__ = ["fetch", "install", "manifest_of", "progress_of", "remove_entry"]

logger = logging.getLogger(__name__)

_MANIFEST_VERSION = 1
_NOFOLLOW_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _write_atomic(path: Path, text: str, handle: str) -> None:
    """Writes ``path`` through a fresh temp file (``O_EXCL | O_NOFOLLOW``) and a rename, so an
    existing file or link at ``path`` is replaced, never written through."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmpfile")
    try:
        fd = os.open(tmp, _NOFOLLOW_CREATE, 0o666)
        with open(fd, "w", encoding="utf8") as f:
            mode = os.fstat(fd).st_mode
            if mode & stat.S_IWOTH:
                os.fchmod(fd, stat.S_IMODE(mode) & ~stat.S_IWOTH)
            f.write(text)
        try:
            os.replace(tmp, path)
        except PermissionError as exc:
            st = trust.lstat(path)
            if st is None:
                raise
            raise trust.cannot_remove(path, st, exc.strerror or str(exc), handle) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_entry(entry: Path) -> None:
    """Deletes a cache entry and its sibling files (the entry is hidden atomically first).

    Raises:
        CacheError: the file system does not let us remove one of them (named, with owner).
    """
    trust.discard(entry)
    for suffix in (MANIFEST_SUFFIX, DESCRIPTOR_SUFFIX):
        trust.discard(sibling(entry, suffix))


def manifest_of(directory: Path) -> Manifest:
    """Sizes (no hashes) of every regular file under ``directory``."""
    result: Manifest = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, directory).replace(os.sep, "/")
            result[rel] = FileRecord(os.lstat(full).st_size, None)
    return result


def progress_of(entry: Path) -> tuple[int, int]:
    """(total bytes, newest modification) of the temp dirs of ``entry``: a download in progress
    changes it, whether it appends (the tarball) or writes into preallocated files (the fast
    path). Links are not followed, and directories the cache does not trust do not count."""
    total = newest = 0
    pol = trust.policy(entry.parent)
    for tmp in [*entry.parent.glob(entry.name + ".*.tmp"), partial_path(entry)]:
        top = trust.lstat(tmp)
        if top is None or not stat.S_ISDIR(top.st_mode) or not trust.trusted(top, pol):
            continue
        for dirpath, _, files in os.walk(tmp):
            for name in files:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(dirpath, name))
                    total += st.st_size
                    newest = max(newest, st.st_mtime_ns)
    return total, newest


def _private_tree(top: Path, pol: trust.Policy) -> bool:
    """Whether ``top`` and everything under it is ours alone: all ours, no links, and nothing
    others could have written (inside a directory closed to others, modes do not matter)."""
    st = trust.lstat(top)
    if st is None or not stat.S_ISDIR(st.st_mode) or not trust.is_private(st, pol):
        return False
    closed = not st.st_mode & 0o077
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            try:
                child = os.lstat(os.path.join(dirpath, name))
            except OSError:
                return False
            if stat.S_ISLNK(child.st_mode) or child.st_uid != pol.uid:
                return False
            if not closed and not trust.is_private(child, pol):
                return False
    return True


def _clear_the_way(entry: Path, problem: str, handle: str) -> None:
    """Removes what stands where the new entry goes: the unusable entry, and siblings or
    partial state the cache does not trust (CacheError if one cannot be removed)."""
    pol = trust.policy(entry.parent)
    if os.path.lexists(entry):
        logger.warning("Re-downloading %s: the cached copy is incomplete (%s).", handle, problem)
        trust.discard(entry, handle=handle)
    for suffix in (MANIFEST_SUFFIX, DESCRIPTOR_SUFFIX):
        path = sibling(entry, suffix)
        st = trust.lstat(path)
        if st is not None and not (stat.S_ISREG(st.st_mode) and trust.trusted(st, pol)):
            logger.warning("Removing %s: owned by %s.", path, trust.owner_name(st))
            trust.discard(path, handle=handle)
    partial = partial_path(entry)
    if os.path.lexists(partial) and not _private_tree(partial, pol):
        st = trust.lstat(partial)
        owner = trust.owner_name(st) if st is not None else "?"
        logger.warning(
            "Not resuming from %s (owned by %s): it is not private to you; starting afresh.",
            partial,
            owner,
        )
        trust.discard(partial, handle=handle)


def _seal(tmp: Path, handle: str) -> None:
    """Checks that ``tmp`` holds only regular files and directories, clears world-write bits,
    and gives ``tmp`` itself the usual mode (``0777 & ~umask``, never world-writable)."""
    for dirpath, dirs, files in os.walk(tmp):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                rel = os.path.relpath(path, tmp)
                raise CacheError(
                    f"The download of {handle} produced {rel!r}, which is not a regular file "
                    "or directory (a link?); nothing was installed. Run `tfhub cache prune` and "
                    "try again; report it if it persists.",
                    handle=handle,
                )
            if st.st_mode & stat.S_IWOTH:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~stat.S_IWOTH)
    setgid = os.lstat(tmp).st_mode & stat.S_ISGID  # kept: a group-shared cache stays one
    os.chmod(tmp, setgid | (0o777 & ~trust.umask() & ~stat.S_IWOTH))


def install(
    handle: str,
    fill: Callable[[Path], Manifest | None],
    *,
    cache_root: Path | None = None,
) -> Path:
    """Returns the cache entry of ``handle``, calling ``fill(tmp_dir)`` to create it if needed.

    ``fill`` writes the model into the empty directory it gets and returns the manifest of what
    it wrote (or None to have it computed). The entry appears atomically: it is built in a
    private temp directory beside its final place and renamed into place under the entry's
    lock, and the temp directory is removed whatever happens.

    Raises:
        CacheError: the cache directory cannot be written, or holds another user's files
            where this entry goes.
        ArchiveError: ``fill`` produced something that is not a model directory.
        Whatever ``fill`` raises.
    """
    entry = entry_path(handle, cache_root)
    if lookup(handle, cache_root) is not None:
        return entry
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"Cannot create the cache directory {entry.parent} for {handle}: {exc.strerror}. "
            "Set TFHUB_CACHE_DIR to a writable directory.",
            handle=handle,
        ) from exc
    lock = sibling(entry, LOCK_SUFFIX)
    owner = cachelock.acquire(
        lock, handle, done=lambda: check_entry(entry) is None, progress=lambda: progress_of(entry)
    )
    if owner is None:
        return entry
    try:
        problem = usable_problem(entry)
        if problem is None:
            return entry
        tmp = entry.with_name(f"{entry.name}.{uuid.uuid4().hex}.tmp")
        try:
            _clear_the_way(entry, problem, handle)
            # Nobody else may write in it; in a group-shared cache the group may look in, so
            # that members waiting on the lock see the download progress.
            os.mkdir(tmp, 0o700 if trust.policy(entry.parent).group is None else 0o750)
            manifest = fill(tmp)
            if manifest is None:
                manifest = manifest_of(tmp)
            _seal(tmp, handle)
            if not protocol.is_model_dir(tmp):
                raise ArchiveError(
                    f"{handle} does not contain a model at its root: no saved_model.pb, "
                    f"saved_model.pbtxt or tfhub_module.pb (found {_describe_top(tmp)}). "
                    "An archive "
                    "must be created from inside the model directory, e.g. "
                    "`tar -czf model.tar.gz -C export_dir .`.",
                    handle=handle,
                )
            files = {rel: r.to_json() for rel, r in sorted(manifest.items())}
            doc = {"version": _MANIFEST_VERSION, "handle": handle, "files": files}
            _write_atomic(sibling(entry, MANIFEST_SUFFIX), json.dumps(doc, indent=1), handle)
            _write_atomic(sibling(entry, DESCRIPTOR_SUFFIX), _descriptor(handle), handle)
            try:
                os.replace(tmp, entry)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and check_entry(entry) is None:
                    return entry  # another writer (e.g. tensorflow_hub ignoring our lock) won
                raise
        except OSError as exc:
            if isinstance(exc, HubError):
                raise
            what = "The disk is full" if exc.errno == errno.ENOSPC else str(exc)
            raise CacheError(
                f"Could not write the cache entry for {handle} under {entry.parent}: {what}. "
                "Free some space (`tfhub cache prune`), check permissions, or set "
                "TFHUB_CACHE_DIR elsewhere.",
                handle=handle,
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        cachelock.release(lock, owner)
    return entry


def fetch(handle: str, fill: Callable[[Path], Manifest | None], *, what: str) -> str:
    """The cache entry of ``handle``; on a miss, ``fill`` creates it (unless offline).

    Args:
        handle: the handle, also the cache key.
        fill: writes the model into the directory it gets (see :func:`install`).
        what: how the handle would be fetched, for the offline error ("downloaded", ...).

    Raises:
        OfflineError: TFHUB_OFFLINE is set and the handle is not cached.
    """
    hit = lookup(handle)
    if hit is not None:
        return str(hit)
    if config.offline():
        raise OfflineError(
            f"{handle} is not in the cache at {config.cache_dir()} and TFHUB_OFFLINE is set; "
            f"unset TFHUB_OFFLINE to have it {what}, or point TFHUB_CACHE_DIR at a cache that "
            "holds it.",
            handle=handle,
        )
    return str(install(handle, fill))


def _describe_top(directory: Path) -> str:
    names = sorted(os.listdir(directory))[:5]
    return (
        ", ".join(repr(n + ("/" if (directory / n).is_dir() else "")) for n in names) or "nothing"
    )


def _descriptor(handle: str) -> str:
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    return (
        f"Module: {handle}\nDownload Time: {now}\n"
        f"Downloader Hostname: {socket.gethostname()} (PID:{os.getpid()})"
    )
