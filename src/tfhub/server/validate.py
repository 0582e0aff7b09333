"""Checking an upload without running it: the op scan and the description, in a child process.

The hub never loads, calls or restores an uploaded model. What it checks and shows comes from
parsing: the op scan (:func:`scan`, every graph variant and function) and the description
(``tfhub.tools.inspect.inspect_model``: format, graph variants, signatures, variables, common
signatures, from the protobufs and the checkpoint index). Parsing a stranger's protobufs is
still handling hostile input, so it runs in a child process that

* gets a minimal environment (no tokens, no cloud credentials, a private ``HOME``),
* limits itself before reading anything: address space (``RLIMIT_AS``), CPU seconds
  (``RLIMIT_CPU``), size of any file it writes (``RLIMIT_FSIZE``), no core dumps,
* runs in its own session and is killed after ``timeout`` seconds.

Importing TensorFlow (whose public protobuf classes the parsers use) costs seconds, so the
children are not started from scratch: the server starts one warm parent per process
(``python -m tfhub.server.validate --serve FD``, with the minimal environment) that imports
the parsing code once and then forks a FRESH child for every upload; the child limits itself
as above, validates one upload, answers on its own socket and exits. Nothing of an upload ever
runs in the warm parent (it only forks), and the server process itself never forks. The parent
exits when the server closes its end (or dies). ``python -m tfhub.server.validate DIR`` still
validates one directory in a cold process.

What this does not isolate: the child runs as the server's user and could read what that user
can read if a parser bug let an upload take control of it; it is not a sandbox (no namespaces,
no seccomp). The defence is that nothing of the upload is executed.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from tfhub.errors import HubError, PublishError
from tfhub.tools.inspect import validate_upload

__all__ = ["validate_model"]

MEMORY_LIMIT = 6 << 30  # bytes of address space (TensorFlow's import alone reserves ~1.5 GiB)
FILE_SIZE_LIMIT = 64 << 20
_KEPT_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
_STDERR_FILE = "validator.stderr"


def validate_model(
    model_dir: Path, *, allow_unsafe_ops: bool, timeout: float, home: Path
) -> dict[str, Any]:
    """The description of the model in ``model_dir`` (what ``inspect_model`` reports).

    Args:
        model_dir: the unpacked upload.
        allow_unsafe_ops: publish models whose op scan has findings (listed in the result).
        timeout: seconds allowed, also the child's CPU limit.
        home: a private directory under which the child gets its own ``HOME``.

    Raises:
        PublishError: 422, the op scan found ops outside the policy, the files do not parse
            as a model, or the check took too long or crashed.
    """
    child_home = home / f"validator-{uuid.uuid4().hex}"
    child_home.mkdir(mode=0o700)
    request = {
        "path": str(model_dir),
        "home": str(child_home),
        "cpu_seconds": max(1, int(timeout)),
        "allow_unsafe_ops": allow_unsafe_ops,
    }
    try:
        answer = _FORKSERVER.run(request, timeout)
        stderr_file = child_home / _STDERR_FILE
        stderr = stderr_file.read_text(errors="replace") if stderr_file.exists() else ""
    finally:
        shutil.rmtree(child_home, ignore_errors=True)
    lines = answer.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        result = {"error": stderr[-500:] or "the validator exited without an answer"}
    if "error" in result:
        error = str(result["error"]).replace(str(model_dir), "<upload>")  # no server paths
        raise PublishError(f"The upload is not an acceptable model: {error}", status=422)
    return result


class _Forkserver:
    """The warm parent of the validation children, started on first use (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._owner = 0

    def run(self, request: dict[str, Any], timeout: float) -> str:
        """Has a fresh child validate ``request``; its answer (pid line, then JSON line)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            ours.sendall(json.dumps(request).encode() + b"\n")
            self._hand_over(theirs)
            theirs.close()
            return self._read(ours, timeout)
        finally:
            ours.close()
            theirs.close()

    def _hand_over(self, conn: socket.socket) -> None:
        with self._lock:
            for attempt in (1, 2):
                control = self._ensure_started()
                try:
                    socket.send_fds(control, [b"v"], [conn.fileno()])
                    return
                except OSError as exc:  # the parent died (killed, out of memory): start another
                    self._stop()
                    if attempt == 2:
                        raise PublishError(
                            "The model validator could not start.", status=500
                        ) from exc

    @staticmethod
    def _read(conn: socket.socket, timeout: float) -> str:
        conn.settimeout(timeout)
        data = b""
        try:
            while chunk := conn.recv(1 << 16):
                data += chunk
        except TimeoutError:
            pid = data.split(b"\n", 1)[0]
            if pid.isdigit():
                with contextlib.suppress(OSError):  # the child leads its own session
                    os.killpg(int(pid), signal.SIGKILL)
            raise PublishError("Validating the model took too long.", status=422) from None
        return data.decode(errors="replace")

    def _ensure_started(self) -> socket.socket:
        if self._proc is not None and self._owner != os.getpid():  # a forked server process
            self._proc = self._control = None
        if self._proc is None or self._proc.poll() is not None or self._control is None:
            self._stop()
            control, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
            env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
            env["HOME"] = env.get("TMPDIR", "/tmp")  # each child gets its own (request "home")
            fd = child_end.fileno()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tfhub.server.validate", "--serve", str(fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd="/",
                pass_fds=[fd],
                start_new_session=True,
            )
            child_end.close()
            self._control, self._owner = control, os.getpid()
        return self._control

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the parent sees the end of its control socket and exits
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = self._control = None

    def close(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._stop()


_FORKSERVER = _Forkserver()
atexit.register(_FORKSERVER.close)


def _limit_resources(cpu_seconds: int) -> None:
    for limit, value in (
        (resource.RLIMIT_AS, MEMORY_LIMIT),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))


def _validate(path: str, allow_unsafe_ops: bool) -> dict[str, Any]:
    try:
        return validate_upload(path, refuse_unsafe=not allow_unsafe_ops)
    except HubError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a parser crash on hostile input is a refusal, not a 500
        return {"error": f"{type(exc).__name__}: {exc}"}


def _child(conn: socket.socket) -> None:
    """One upload, in a fresh child of the warm parent: limits first, then parse."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    conn.sendall(f"{os.getpid()}\n".encode())
    request = json.loads(conn.makefile("rb").readline())
    home = request["home"]
    os.chdir(home)
    os.environ["HOME"] = home
    stderr = os.open(os.path.join(home, _STDERR_FILE), os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(stderr, 2)
    os.close(stderr)
    _limit_resources(int(request["cpu_seconds"]))
    result = _validate(str(request["path"]), bool(request["allow_unsafe_ops"]))
    conn.sendall(json.dumps(result).encode() + b"\n")


def _serve(control_fd: int) -> None:
    """The warm parent: imports the parsing code once, then forks a child per connection."""
    import tensorflow  # noqa: F401  (what the parsers' protobuf classes cost; paid once here)

    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    while True:
        msg, fds, _, _ = socket.recv_fds(control, 16, 4)
        if not msg:  # the server closed its end or died
            return
        for fd in fds:
            try:
                pid = os.fork()
            except OSError:  # out of processes: this upload gets no answer (a refusal)
                os.close(fd)
                continue
            if pid == 0:
                status = 1
                try:
                    control.close()
                    _child(socket.socket(fileno=fd))
                    status = 0
                finally:
                    os._exit(status)
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfhub.server.validate")
    parser.add_argument("path", nargs="?")
    parser.add_argument("--allow-unsafe-ops", action="store_true")
    parser.add_argument("--cpu-seconds", type=int, default=600)
    parser.add_argument("--serve", type=int, metavar="FD", help="the warm parent (internal)")
    args = parser.parse_args(argv)
    if args.serve is not None:
        _serve(args.serve)
        return 0
    if args.path is None:
        parser.error("a model directory is required")
    _limit_resources(args.cpu_seconds)
    result = _validate(args.path, args.allow_unsafe_ops)
    print(json.dumps(result))
    return 2 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
