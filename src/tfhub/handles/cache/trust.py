"""Who the cache trusts, and file operations that never follow a link planted by someone else.

The policy (also in the README's "Shared caches" section):

* An entry directory, a ``.manifest.json``, a ``.descriptor.txt`` and a ``.lock`` are used
  only when they are *not links* and are owned by you or by root, or, in a **group-shared
  cache**, by the cache's group. A cache root is group-shared when it is group-writable,
  not world-writable, and its group is one of yours (the usual set-up: ``chgrp ml cache;
  chmod 2775 cache`` and ``umask 002``); then anything whose group is that group and which is
  not world-writable is trusted, whoever created it.
* Anything world-writable inside the cache is not trusted (the root itself may be
  world-writable with the sticky bit, like ``/tmp``).
* A ``<sha1>.partial/`` download state is trusted only when it is yours and writable by you
  alone (the staging directories tfhub creates are 0700): a group member's is discarded.
* What is not trusted is never read as a manifest, never written through and never installed:
  it is removed when the file system lets us (e.g. a directory without the sticky bit), and
  otherwise :class:`~tfhub.errors.CacheError` names the path, its owner and what to do.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import stat
import uuid
from pathlib import Path

from tfhub.errors import CacheError

__all__ = [
    "Policy",
    "cannot_remove",
    "discard",
    "is_private",
    "lstat",
    "owner_name",
    "policy",
    "read_nofollow",
    "trusted",
    "umask",
]


class Policy:
    """Whom a cache root trusts: the user ``uid`` (and root), and ``group`` when the root is
    group-shared (looked up only when a file is not ours, so the usual check costs nothing)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uid = os.geteuid()

    @functools.cached_property
    def group(self) -> int | None:
        return _shared_group(self.root)


def _shared_group(root: Path) -> int | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    mode = st.st_mode
    mine = st.st_gid == os.getegid() or st.st_gid in os.getgroups()
    shared = bool(mode & stat.S_IWGRP) and not mode & stat.S_IWOTH and mine
    return st.st_gid if shared else None


def policy(root: Path) -> Policy:
    """The trust policy of the cache root ``root`` (see the module docstring)."""
    return Policy(root)


def trusted(st: os.stat_result, pol: Policy) -> bool:
    """Whether a file with this ``lstat`` may be used: not a link, not world-writable, and
    owned by us or root, or by the shared group."""
    if stat.S_ISLNK(st.st_mode) or st.st_mode & stat.S_IWOTH:
        return False
    if st.st_uid in (pol.uid, 0):
        return True
    return pol.group is not None and st.st_gid == pol.group


def is_private(st: os.stat_result, pol: Policy) -> bool:
    """Whether this ``lstat`` is of something only we can write (partial download state)."""
    return (
        not stat.S_ISLNK(st.st_mode)
        and st.st_uid == pol.uid
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def lstat(path: Path) -> os.stat_result | None:
    """``os.lstat``, or None if ``path`` does not exist."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def owner_name(st: os.stat_result) -> str:
    """``"alice (uid 1000)"``: who owns a file, for messages."""
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return f"uid {st.st_uid}"
    return f"{name} (uid {st.st_uid})"


def read_nofollow(path: Path, pol: Policy, limit: int = 1 << 24) -> bytes | None:
    """The bytes of the regular file ``path`` if it is trusted; None if it does not exist, is
    a link, or is not trusted. Opened with ``O_NOFOLLOW`` and checked with ``fstat`` (no
    race between the check and the read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not trusted(st, pol):
            return None
        chunks = []
        left = limit
        while left and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def cannot_remove(path: Path, st: os.stat_result, why: str, handle: str | None) -> CacheError:
    """The error for something in the cache we must not use and cannot remove."""
    owner = owner_name(st)
    kind = (
        "link" if stat.S_ISLNK(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode) else "file"
    )
    action = (
        f"ask {owner} or an administrator to remove it, or set TFHUB_CACHE_DIR to a cache "
        "directory of your own"
    )
    todo = f"To cache {handle}, {action}." if handle else f"{action[0].upper()}{action[1:]}."
    return CacheError(
        f"The cache holds {path}, a {kind} owned by {owner}, which tfhub does not use or write "
        f"through (it is not yours: see 'Shared caches' in the README), and it cannot be "
        f"removed ({why}). {todo}",
        handle=handle,
    )


def discard(path: Path, *, handle: str | None = None) -> bool:
    """Removes ``path`` (a directory, file or link) by first renaming it aside, so that no
    half-deleted entry is ever visible; links are removed, never followed.

    Returns:
        Whether something was removed.

    Raises:
        CacheError: it exists but the file system does not let us move it (e.g. another
            user's, in a directory with the sticky bit).
    """
    st = lstat(path)
    if st is None:
        return False
    trash = path.with_name(f"{path.name}.{uuid.uuid4().hex}.trash")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise cannot_remove(path, st, exc.strerror or str(exc), handle) from exc
    moved = lstat(trash)
    if moved is not None and stat.S_ISDIR(moved.st_mode):
        shutil.rmtree(trash, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            trash.unlink()
    return True


def umask() -> int:
    """The process umask, read without changing it where Linux allows (thread-safe)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old
