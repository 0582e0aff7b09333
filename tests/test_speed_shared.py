"""tests.helpers.shared.built_once: what the shared MiniLM conversion relies on (one build per
run under a file lock, nothing taken as built after a failed build, read-only files)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.shared import built_once, shared_root


def test_concurrent_callers_share_one_build(tmp_path_factory):
    name = f"once-{uuid.uuid4().hex}"
    builds: list[int] = []
    results: list[Path] = []

    def build(directory: Path) -> None:
        builds.append(threading.get_ident())
        time.sleep(0.3)  # the other caller arrives meanwhile and must wait
        (directory / "sub").mkdir()
        (directory / "sub" / "data.txt").write_text("built")

    threads = [
        threading.Thread(target=lambda: results.append(built_once(tmp_path_factory, name, build)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(builds) == 1
    assert len(results) == 3 and len(set(results)) == 1
    target = results[0]
    assert target == shared_root(tmp_path_factory) / name
    assert (target / "sub" / "data.txt").read_text() == "built"
    assert not os.stat(target / "sub" / "data.txt").st_mode & 0o222  # read-only for the tests
    assert not (target.parent / f"{name}.partial").exists()


def test_a_failed_build_is_not_taken_as_built(tmp_path_factory):
    name = f"fails-{uuid.uuid4().hex}"

    def broken(directory: Path) -> None:
        (directory / "half.txt").write_text("half")
        raise RuntimeError("the build broke")

    for _ in range(2):  # each call builds again and shows the real error
        with pytest.raises(RuntimeError, match="the build broke"):
            built_once(tmp_path_factory, name, broken)
        assert not (shared_root(tmp_path_factory) / name).exists()

    def good(directory: Path) -> None:
        (directory / "ok.txt").write_text("ok")

    target = built_once(tmp_path_factory, name, good)
    assert sorted(os.listdir(target)) == ["ok.txt"]  # nothing of the failed builds


def test_the_shared_root_is_this_runs_own(tmp_path_factory):
    root = shared_root(tmp_path_factory)
    base = tmp_path_factory.getbasetemp()
    # Under xdist the workers' base directories share a parent that is this run's alone.
    assert root == (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
