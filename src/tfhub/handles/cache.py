"""The model cache: layout shared with ``tensorflow_hub``, locks, checks, atomic installs.

Layout under the cache root (``TFHUB_CACHE_DIR``), identical to ``tensorflow_hub``'s so that
either library reuses the other's downloads::

    <sha1(handle)>/                  the model directory
    <sha1(handle)>.descriptor.txt    "Module: <handle>", download time, host and pid
    <sha1(handle)>.lock              "<host>.<pid>.<uuid>" while a download is running
    <sha1(handle)>.<uuid>.tmp/       a download in progress
    <sha1(handle)>.partial/          tfhub only: blocks of an interrupted fast-path download

tfhub adds one sibling file, ``<sha1(handle)>.manifest.json``, listing every file of the
entry with its size and sha256 (or, for files that came by the fast path, the sha256 of each
block, as verified during the download). An entry is used only if it passes :func:`check_entry`:
with a manifest every file must exist with its recorded size; without one (an entry written
by ``tensorflow_hub``) it must at least hold a model file and every variables shard its index
names. Anything else is treated as missing and downloaded again.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfhub import config, protocol
from tfhub.errors import ArchiveError, CacheError, HubError, OfflineError

__all__ = [
    "Manifest",
    "check_entry",
    "entry_path",
    "fetch",
    "install",
    "lookup",
    "read_manifest",
    "verify_entry",
]

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
DESCRIPTOR_SUFFIX = ".descriptor.txt"
LOCK_SUFFIX = ".lock"
PARTIAL_SUFFIX = ".partial"
_MANIFEST_VERSION = 1
_SHARD_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<i>\d{5})-of-(?P<n>\d{5})$")
_POLL_SECONDS = 0.25
_WAIT_LOG_EVERY = 30.0


@dataclass(frozen=True)
class FileRecord:
    """One file of a cache entry: its size and sha256, or (files that came by the fast path)
    the sha256 of each ``block_size`` block, as verified while they were downloaded."""

    size: int
    sha256: str | None
    block_size: int | None = None
    blocks: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"size": self.size, "sha256": self.sha256}
        if self.blocks is not None:
            out.update(block_size=self.block_size, blocks=list(self.blocks))
        return out

    @classmethod
    def from_json(cls, rec: Any) -> FileRecord:
        blocks = rec.get("blocks")
        if blocks is None:
            return cls(int(rec["size"]), rec.get("sha256"))
        return cls(int(rec["size"]), rec.get("sha256"), int(rec["block_size"]), tuple(blocks))


Manifest = dict[str, FileRecord]


def entry_path(handle: str, cache_root: Path | None = None) -> Path:
    """``<cache>/<sha1(handle)>``: where ``handle`` is (or will be) cached."""
    root = cache_root if cache_root is not None else config.cache_dir()
    return root / hashlib.sha1(handle.encode("utf8")).hexdigest()


def _sibling(entry: Path, suffix: str) -> Path:
    return entry.with_name(entry.name + suffix)


def read_manifest(entry: Path) -> Manifest | None:
    """The manifest tfhub wrote for ``entry``, or None (no manifest, or unreadable)."""
    try:
        raw = json.loads(_sibling(entry, MANIFEST_SUFFIX).read_text("utf8"))
        files = raw["files"]
        return {rel: FileRecord.from_json(rec) for rel, rec in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _structural_problem(entry: Path) -> str | None:
    """Checks an entry without manifest: a model file, and every variables shard present."""
    if not any(entry.iterdir()):
        return "the directory is empty"
    if not protocol.is_model_dir(entry):
        return "it holds no saved_model.pb, saved_model.pbtxt or tfhub_module.pb"
    variables = entry / "variables"
    if variables.is_dir():
        names = set(os.listdir(variables))
        shards = [m for m in map(_SHARD_RE.match, names) if m]
        if shards and not (variables / f"{shards[0]['prefix']}.index").is_file():
            return f"variables/{shards[0]['prefix']}.index is missing"
        for m in shards:
            for i in range(int(m["n"])):
                shard = f"{m['prefix']}.data-{i:05d}-of-{m['n']}"
                if shard not in names:
                    return f"variables/{shard} is missing"
        for name in names:
            if name.endswith(".index") and not any(
                s["prefix"] == name[: -len(".index")] for s in shards
            ):
                return f"variables/{name} has no data shards"
    return None


def check_entry(entry: Path) -> str | None:
    """Why ``entry`` cannot be used, or None when it is complete.

    This is the cheap check done on every cache hit: one ``stat`` per file.
    """
    if not entry.is_dir():
        return "it does not exist"
    manifest = read_manifest(entry)
    if manifest is None:
        try:
            return _structural_problem(entry)
        except OSError as exc:
            return f"it cannot be read ({exc.strerror})"
    for rel, record in manifest.items():
        try:
            size = (entry / rel).stat().st_size
        except OSError:
            return f"{rel} is missing"
        if size != record.size:
            return f"{rel} has {size} bytes instead of {record.size}"
    return None


def verify_entry(entry: Path) -> list[str]:
    """Re-hashes every file of ``entry`` against its manifest; returns the problems found."""
    manifest = read_manifest(entry)
    if manifest is None:
        problem = check_entry(entry)
        return [problem] if problem else []
    problems = []
    for rel, record in manifest.items():
        path = entry / rel
        try:
            size = path.stat().st_size
            if size != record.size:
                problems.append(f"{rel} has {size} bytes instead of {record.size}")
            elif record.sha256:
                digest = _sha256_file(path)
                if digest != record.sha256:
                    problems.append(f"{rel} has sha256 {digest}, expected {record.sha256}")
            elif record.blocks is not None and record.block_size:
                bad = bad_blocks(path, record.block_size, record.blocks)
                if bad:
                    problems.append(
                        f"{rel} has {len(bad)} altered block(s), the first at byte "
                        f"{bad[0] * record.block_size}"
                    )
        except OSError:
            problems.append(f"{rel} is missing")
    return problems


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def bad_blocks(path: str | os.PathLike[str], block_size: int, blocks: tuple[str, ...]) -> list[int]:
    """Indexes of the ``block_size`` blocks of ``path`` whose sha256 is not the expected one
    (a short file fails its missing blocks)."""
    bad = []
    with open(path, "rb") as f:
        for index, expected in enumerate(blocks):
            h = hashlib.sha256()
            left = block_size
            while left and (chunk := f.read(min(1 << 20, left))):
                h.update(chunk)
                left -= len(chunk)
            if h.hexdigest() != expected:
                bad.append(index)
    return bad


def _usable_problem(entry: Path) -> str | None:
    """:func:`check_entry`, plus the sha256 check when ``TFHUB_VERIFY_CACHE`` is set."""
    problem = check_entry(entry)
    if problem is None and config.verify_cache():
        problem = "; ".join(verify_entry(entry)) or None
    return problem


def lookup(handle: str, cache_root: Path | None = None) -> Path | None:
    """The complete cache entry of ``handle``, or None. Never takes a lock."""
    entry = entry_path(handle, cache_root)
    problem = _usable_problem(entry)
    if problem is None:
        return entry
    if entry.exists():
        logger.info("Not using the incomplete cache entry %s of %s: %s.", entry, handle, problem)
    return None


# --------------------------------------------------------------------------------------------
# Locking


def _lock_owner_id() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists but belongs to another user
        return True
    return True


def _holder_is_dead(content: str) -> bool:
    """True if the lock was written by a process of this host that no longer exists."""
    host, _, _uuid = content.rpartition(".")
    host, _, pid = host.rpartition(".")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def _read(path: Path) -> str | None:
    """The content of a lock file; None only if it does not exist (any more)."""
    try:
        return path.read_bytes().decode("utf8", "replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        # Unreadable (permissions): an unknown holder, subject to the usual timeout.
        return f"<unreadable: {exc.strerror}>"


def _remove_lock_if(lock: Path, expected: str) -> None:
    """Removes ``lock`` if it still holds ``expected``, without a read-then-delete race.

    The lock is first renamed aside (atomic), then checked; a lock that changed owner in the
    meantime is put back.
    """
    aside = lock.with_name(f"{lock.name}.{uuid.uuid4().hex}.old")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    try:
        if _read(aside) != expected:
            with contextlib.suppress(OSError):  # FileExistsError: a newer lock won
                os.link(aside, lock)  # never clobbers a lock created since
    finally:
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()


def partial_path(entry: Path) -> Path:
    """The staging directory of a resumable download of ``entry`` (kept across attempts)."""
    return _sibling(entry, PARTIAL_SUFFIX)


def _progress_of(entry: Path) -> tuple[int, int]:
    """(total bytes, newest modification) of the temp dirs of ``entry``: a download in progress
    changes it, whether it appends (the tarball) or writes into preallocated files (the fast
    path)."""
    total = newest = 0
    for tmp in [*entry.parent.glob(entry.name + ".*.tmp"), partial_path(entry)]:
        for dirpath, _, files in os.walk(tmp):
            for name in files:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(dirpath, name))
                    total += st.st_size
                    newest = max(newest, st.st_mtime_ns)
    return total, newest


def _acquire_lock(entry: Path, handle: str) -> str | None:
    """Creates ``<entry>.lock`` (O_EXCL) and returns its content, or None if, while we waited,
    another process completed the entry.

    A lock whose holder died on this host is taken over at once; one that shows no progress
    (lock content and temp-dir size unchanged) for ``TFHUB_LOCK_TIMEOUT`` seconds is taken over
    too. Waiting is logged with the holder's name.
    """
    lock = _sibling(entry, LOCK_SUFFIX)
    me = _lock_owner_id()
    last_state: tuple[str, tuple[int, int]] | None = None
    last_change = time.monotonic()
    last_log = -_WAIT_LOG_EVERY
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            pass
        except OSError as exc:
            raise CacheError(
                f"Cannot create the lock file {lock} for {handle}: {exc.strerror}. Make the cache "
                "directory writable or point TFHUB_CACHE_DIR elsewhere.",
                handle=handle,
            ) from exc
        else:
            try:
                os.write(fd, me.encode("utf8"))
            finally:
                os.close(fd)
            return me
        holder = _read(lock)
        if holder is None:  # released between our two calls
            continue
        if check_entry(entry) is None:
            return None
        now = time.monotonic()
        state = (holder, _progress_of(entry))
        if state != last_state:
            last_state, last_change = state, now
        if _holder_is_dead(holder) or now - last_change >= config.lock_timeout():
            logger.warning("Taking over the stale lock %s held by %s.", lock, holder)
            _remove_lock_if(lock, holder)
            last_state = None
            continue
        if now - last_log >= _WAIT_LOG_EVERY:
            logger.warning("%s is already being downloaded by %s. Waiting.", handle, holder)
            last_log = now
        time.sleep(_POLL_SECONDS)


def _release_lock(entry: Path, owner: str) -> None:
    _remove_lock_if(_sibling(entry, LOCK_SUFFIX), owner)


# --------------------------------------------------------------------------------------------
# Installing


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmpfile")
    try:
        tmp.write_text(text, "utf8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _discard(path: Path) -> None:
    """Removes a directory by first renaming it aside, so no half-deleted entry is ever visible."""
    if not path.exists():
        return
    trash = path.with_name(f"{path.name}.{uuid.uuid4().hex}.trash")
    os.replace(path, trash)
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink()


def remove_entry(entry: Path) -> None:
    """Deletes a cache entry and its sibling files (atomically hidden first)."""
    _discard(entry)
    for suffix in (MANIFEST_SUFFIX, DESCRIPTOR_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            _sibling(entry, suffix).unlink()


def prune(root: Path) -> list[str]:
    """Removes incomplete entries and the leftovers of crashed downloads; returns their names.

    Temp and trash directories are removed only when no download of that entry is running
    (no lock file).
    """
    removed: list[str] = []
    if not root.is_dir():
        return removed
    names = set(os.listdir(root))
    for name in sorted(names):
        path = root / name
        base = name.split(".", 1)[0]
        locked = f"{base}{LOCK_SUFFIX}" in names
        if "." not in name and path.is_dir():
            if check_entry(path) is not None and not locked:
                remove_entry(path)
                removed.append(name)
        elif name.endswith((".tmp", ".trash", PARTIAL_SUFFIX)) and not locked:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        elif name.endswith((MANIFEST_SUFFIX, DESCRIPTOR_SUFFIX)) and base not in names:
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


def manifest_of(directory: Path) -> Manifest:
    """Sizes (no hashes) of every regular file under ``directory``."""
    result: Manifest = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, directory).replace(os.sep, "/")
            result[rel] = FileRecord(os.stat(full).st_size, None)
    return result


def install(
    handle: str,
    fill: Callable[[Path], Manifest | None],
    *,
    cache_root: Path | None = None,
) -> Path:
    """Returns the cache entry of ``handle``, calling ``fill(tmp_dir)`` to create it if needed.

    ``fill`` writes the model into the empty directory it gets and returns the manifest of what
    it wrote (or None to have it computed). The entry appears atomically: it is built in a
    temp directory beside its final place and renamed into place under the entry's lock, and
    the temp directory is removed whatever happens.

    Raises:
        CacheError: the cache directory cannot be written.
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
    owner = _acquire_lock(entry, handle)
    if owner is None:
        return entry
    try:
        problem = _usable_problem(entry)
        if problem is None:
            return entry
        tmp = entry.with_name(f"{entry.name}.{uuid.uuid4().hex}.tmp")
        try:
            if entry.exists():
                logger.warning(
                    "Re-downloading %s: the cached copy is incomplete (%s).", handle, problem
                )
                _discard(entry)
            tmp.mkdir()
            manifest = fill(tmp)
            if manifest is None:
                manifest = manifest_of(tmp)
            if not protocol.is_model_dir(tmp):
                raise ArchiveError(
                    f"{handle} does not contain a model at its root: no saved_model.pb, "
                    f"saved_model.pbtxt or tfhub_module.pb (found {_describe_top(tmp)}). "
                    "An archive "
                    "must be created from inside the model directory, e.g. "
                    "`tar -czf model.tar.gz -C export_dir .`.",
                    handle=handle,
                )
            _write_atomic(
                _sibling(entry, MANIFEST_SUFFIX),
                json.dumps(
                    {
                        "version": _MANIFEST_VERSION,
                        "handle": handle,
                        "files": {rel: r.to_json() for rel, r in sorted(manifest.items())},
                    },
                    indent=1,
                ),
            )
            _write_atomic(_sibling(entry, DESCRIPTOR_SUFFIX), _descriptor(handle))
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
        _release_lock(entry, owner)
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
