"""Working directories in the temp directory, and what killed processes leave of them.

The hub's publisher (uploads being received and unpacked) and ``tfhub mirror pull`` (archives
fetched from upstream, a private cache) work in directories of the temp directory named
``tfhub-<kind>-<host>-<pid>-<random>``: a process removes its own when it ends, and one killed
before that (``SIGKILL``, a crash, a power cut) leaves it, with whatever it held (a partial
upload can be gigabytes). The next process of the same kind on the host removes the leftovers
whose process is gone, and only those: its user's, real directories (never a link), of this
host (a temp directory may be shared by several hosts), of a process that no longer runs.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from tfhub.handles.cache.lock import pid_alive

__all__ = ["new_workdir", "remove_stale_workdirs", "workdir_prefix"]

logger = logging.getLogger(__name__)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def workdir_prefix(kind: str) -> str:
    """The name of this process's working directories of ``kind``, up to their random part."""
    return f"tfhub-{kind}-{_host()}-{os.getpid()}-"


def new_workdir(kind: str) -> Path:
    """A new private (0700) working directory of ``kind`` in the temp directory."""
    return Path(tempfile.mkdtemp(prefix=workdir_prefix(kind)))


def remove_stale_workdirs(kind: str) -> list[str]:
    """Removes the working directories of ``kind`` that killed processes of this user on this
    host left in the temp directory (see the module's doc). Returns what was removed."""
    if not hasattr(os, "geteuid"):
        return []
    name = re.compile(re.escape(f"tfhub-{kind}-{_host()}-") + r"([0-9]+)-[^/]+")
    base = tempfile.gettempdir()
    try:
        entries = list(os.scandir(base))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = name.fullmatch(entry.name)
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        if pid_alive(int(match.group(1))):
            continue
        logger.info("Removing %s, left by a process that was killed", entry.path)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed
