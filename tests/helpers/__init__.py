"""Helpers the tests import (fixtures stay in ``tests/conftest.py``; nothing imports it).

* :mod:`tests.helpers.models`: small real SavedModels and a TF1 Hub module, built on demand.
* :mod:`tests.helpers.tf1_modules`: ``module_fn``s for ``hub.create_module_spec``.
* :mod:`tests.helpers.hub`: the hub server (``tfhub serve``) as a real process, publishing.
* :mod:`tests.helpers.routes`: a hosting route that stops at a given byte (kill points).
* :mod:`tests.helpers.nginx`: a real nginx in a temp dir (a config body, or the shipped
  deploy/nginx/tfhub.conf pointed at a storage root and upstreams), always stopped.
* :mod:`tests.helpers.shared`: expensive artifacts (the MiniLM conversion) built once per run
  for every file and xdist worker, under a file lock.
* here: :data:`REPO`, :func:`python_env` (this checkout first on a child's path) and
  :func:`run_python` (a fresh interpreter, for process-wide TF settings), :func:`tar_gz`
  (an archive of in-memory files) and :func:`imported_modules` (what a source file imports).
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child Python: this checkout's ``src`` first on the path."""
    path = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), **(extra or {})}


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Runs ``code`` in a fresh interpreter (for process-wide TF settings); returns stdout."""
    full_env = python_env(env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({proc.returncode}):\nstdout:\n{proc.stdout}\nstderr:\n"
            f"{proc.stderr[-6000:]}"
        )
    return proc.stdout


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzip tarball holding ``files`` (member name → bytes) as plain files, in that order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def imported_modules(path: Path) -> set[str]:
    """Every module the file at ``path`` imports, at module level or inside functions
    (``from m import n`` counts as both ``m`` and ``m.n``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found
