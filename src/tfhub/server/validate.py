"""Checking an upload without running it: the op scan and the description, in a child process.

The hub never loads, calls or restores an uploaded model. What it checks and shows comes from
parsing: the op scan (:func:`scan`, every graph variant and function) and the description
(``tfhub.tools.inspect.inspect_model``: format, graph variants, signatures, variables, common
signatures, from the protobufs and the checkpoint index). Parsing a stranger's protobufs is
still handling hostile input, so it runs in a child process (``python -m
tfhub.server.validate DIR``) that

* gets a minimal environment (no tokens, no cloud credentials, a private ``HOME``),
* limits itself before reading anything: address space (``RLIMIT_AS``), CPU seconds
  (``RLIMIT_CPU``), size of any file it writes (``RLIMIT_FSIZE``), no core dumps,
* runs in its own session and is killed after ``timeout`` seconds.

What this does not isolate: the child runs as the server's user and could read what that user
can read if a parser bug let an upload take control of it; it is not a sandbox (no namespaces,
no seccomp). The defence is that nothing of the upload is executed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tfhub.errors import HubError, PublishError
from tfhub.tools.inspect import validate_upload

__all__ = ["validate_model"]

MEMORY_LIMIT = 6 << 30  # bytes of address space (TensorFlow's import alone reserves ~1.5 GiB)
FILE_SIZE_LIMIT = 64 << 20
_KEPT_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


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
    env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
    env.update(HOME=str(child_home), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "tfhub.server.validate", str(model_dir)]
    command += ["--cpu-seconds", str(max(1, int(timeout)))]
    if allow_unsafe_ops:
        command.append("--allow-unsafe-ops")
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=child_home,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise PublishError("Validating the model took too long.", status=422) from None
    finally:
        shutil.rmtree(child_home, ignore_errors=True)
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        result = {"error": proc.stderr[-500:] or f"the validator exited with {proc.returncode}"}
    if proc.returncode != 0 or "error" in result:
        error = result.get("error", f"the validator exited with status {proc.returncode}")
        error = str(error).replace(str(model_dir), "<upload>")  # no server paths to clients
        raise PublishError(f"The upload is not an acceptable model: {error}", status=422)
    return result


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfhub.server.validate")
    parser.add_argument("path")
    parser.add_argument("--allow-unsafe-ops", action="store_true")
    parser.add_argument("--cpu-seconds", type=int, default=600)
    args = parser.parse_args(argv)
    _limit_resources(args.cpu_seconds)
    try:
        result = validate_upload(args.path, refuse_unsafe=not args.allow_unsafe_ops)
    except HubError as exc:
        result = {"error": str(exc)}
    except Exception as exc:  # a parser crash on hostile input is a refusal, not a 500
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    return 2 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
