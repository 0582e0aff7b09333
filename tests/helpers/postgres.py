"""A real, throw-away PostgreSQL server (Debian's binaries), for the catalog's tests.

``with postgres() as url:`` starts a cluster in a fresh temporary directory, listening on
127.0.0.1 at a free port (and a unix socket in that directory), and yields its URL
(``postgresql://tfhub@127.0.0.1:<port>/tfhub``); leaving the block stops it and removes the
directory. ``initdb`` refuses root, so as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["postgres", "postgres_bin"]


def postgres_bin() -> Path:
    """The directory of ``initdb``/``pg_ctl`` (the newest Debian version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    bin_dir = postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="tfhub-pg-"))
    data = base / "data"
    user: pwd.struct_passwd | None = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def run(*args: str, timeout: float = 60) -> None:
        def demote() -> None:
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        subprocess.run(
            [str(bin_dir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            preexec_fn=demote,
            cwd=base,
        )

    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    port = _free_port()
    started = False
    try:
        run("initdb", "-D", str(data), "-U", "tfhub", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
        started = True
        run("createdb", "-h", str(base), "-p", str(port), "-U", "tfhub", "tfhub")
        yield f"postgresql://tfhub@127.0.0.1:{port}/tfhub"
    finally:
        if started:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
