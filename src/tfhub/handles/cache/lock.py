"""The download lock of a cache entry: ``<sha1(handle)>.lock``, as ``tensorflow_hub`` does it.

The lock file is created with ``O_CREAT | O_EXCL`` (which never follows a link) and holds
``<host>.<pid>.<uuid>``. A lock whose holder died on this host is taken over at once; one
that shows no progress (same content, same size and age of the download's temp files) for
``TFHUB_LOCK_TIMEOUT`` seconds is taken over too. A lock that is not trusted (a link, or
another user's outside a group-shared cache: see :mod:`tfhub.handles.cache.trust`) is removed
if the file system allows it and is otherwise a :class:`~tfhub.errors.CacheError` at once;
so is a stale lock that cannot be taken over. Nothing here waits forever on another user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfhub import config
from tfhub.errors import CacheError
from tfhub.handles.cache import trust

__all__ = [
    "Holder",
    "acquire",
    "holder_is_dead",
    "pid_alive",
    "read_holder",
    "release",
    "remove_if_dead",
]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.25
_WAIT_LOG_EVERY = 30.0


@dataclass(frozen=True)
class Holder:
    """What a lock file says (``content``) and who owns it (its ``lstat``)."""

    content: str
    st: os.stat_result


def read_holder(lock: Path) -> Holder | None:
    """The lock file's content and owner, None if it does not exist (any more). Never follows
    a link: a link's content is its target, shown as such."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        st = trust.lstat(lock)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            with contextlib.suppress(OSError):
                return Holder(f"<a link to {os.readlink(lock)}>", st)
        return Holder(f"<unreadable: {exc.strerror}>", st)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Holder("<not a regular file>", st)
        return Holder(os.read(fd, 4096).decode("utf8", "replace"), st)
    except OSError as exc:
        return Holder(f"<unreadable: {exc.strerror}>", os.fstat(fd))
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists but belongs to another user
        return True
    return True


def holder_is_dead(content: str) -> bool:
    """True if the lock was written by a process of this host that no longer exists."""
    host, _, _uuid = content.rpartition(".")
    host, _, pid = host.rpartition(".")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


def _remove_if(lock: Path, expected: Holder, handle: str | None) -> None:
    """Removes ``lock`` if it still holds ``expected``, without a read-then-delete race: it is
    first renamed aside (atomic), then checked; a lock that changed in the meantime is put
    back.

    Raises:
        CacheError: the file system does not let us remove it (e.g. another user's lock in a
            directory with the sticky bit).
    """
    aside = lock.with_name(f"{lock.name}.{uuid.uuid4().hex}.old")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise trust.cannot_remove(lock, expected.st, exc.strerror or str(exc), handle) from exc
    try:
        now = read_holder(aside)
        if now is None or now.content != expected.content or now.st.st_ino != expected.st.st_ino:
            with contextlib.suppress(OSError):  # FileExistsError: a newer lock won
                os.link(aside, lock, follow_symlinks=False)  # never clobbers a newer lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()


def remove_if_dead(lock: Path) -> bool:
    """Removes ``lock`` if it is ours (same uid) and its holder died on this host (what
    ``tfhub cache prune`` does with leftovers). Returns whether it was removed."""
    holder = read_holder(lock)
    if holder is None or holder.st.st_uid != os.geteuid():
        return False
    if not stat.S_ISREG(holder.st.st_mode) or not holder_is_dead(holder.content):
        return False
    try:
        _remove_if(lock, holder, None)
    except CacheError:
        return False
    return not lock.exists()


def acquire(
    lock: Path,
    handle: str,
    *,
    done: Callable[[], bool],
    progress: Callable[[], object],
) -> str | None:
    """Creates ``lock`` (``O_EXCL``) and returns its content, or None if, while we waited,
    ``done()`` became true (another process completed the work).

    ``progress()`` is any value that changes while the holder works (e.g. the size of its
    temp files): a holder whose lock content and progress stay the same for
    ``TFHUB_LOCK_TIMEOUT`` seconds is taken over. Waiting is logged with the holder's name.

    Raises:
        CacheError: the lock cannot be created, or it is held by someone we do not trust or
            cannot take over (named in the message).
    """
    me = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}"
    pol = trust.policy(lock.parent)
    last_state: tuple[str, object] | None = None
    last_change = time.monotonic()
    last_log = -_WAIT_LOG_EVERY
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666)
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
        holder = read_holder(lock)
        if holder is None:  # released between our two calls
            continue
        if not trust.trusted(holder.st, pol) or not stat.S_ISREG(holder.st.st_mode):
            logger.warning(
                "Removing the lock %s of %s: it is owned by %s, whom this cache does not trust.",
                lock,
                handle,
                trust.owner_name(holder.st),
            )
            _remove_if(lock, holder, handle)
            continue
        if done():
            return None
        now = time.monotonic()
        state = (holder.content, progress())
        if state != last_state:
            last_state, last_change = state, now
        if holder_is_dead(holder.content) or now - last_change >= config.lock_timeout():
            logger.warning("Taking over the stale lock %s held by %s.", lock, holder.content)
            _remove_if(lock, holder, handle)
            last_state = None
            continue
        if now - last_log >= _WAIT_LOG_EVERY:
            logger.warning("%s is already being downloaded by %s. Waiting.", handle, holder.content)
            last_log = now
        time.sleep(_POLL_SECONDS)


def release(lock: Path, owner: str) -> None:
    """Removes ``lock`` if it still holds ``owner`` (what :func:`acquire` returned)."""
    holder = read_holder(lock)
    if holder is not None and holder.content == owner:
        with contextlib.suppress(CacheError):
            _remove_if(lock, holder, None)
