"""The publish validator's warm parent: TensorFlow imported once, a fresh child per upload.

Real processes, a real SavedModel; the children still run with the limits and the timeout."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tfhub.errors import PublishError
from tfhub.server import validate


@pytest.fixture(scope="module")
def mul(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.models import save_mul

    return save_mul(tmp_path_factory.mktemp("validator") / "mul")


def _answer(path: Path, home: Path, timeout: float = 120) -> tuple[int, dict]:
    home.mkdir()
    request = {"path": str(path), "home": str(home), "cpu_seconds": 60, "allow_unsafe_ops": False}
    pid, result = validate._FORKSERVER.run(request, timeout).splitlines()
    return int(pid), json.loads(result)


def _gone(pid: int) -> bool:
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _warm_parent() -> int:
    proc = validate._FORKSERVER._proc
    assert proc is not None and proc.poll() is None
    return proc.pid


def test_every_upload_gets_a_fresh_child_of_one_warm_parent(mul, tmp_path):
    first, report = _answer(mul, tmp_path / "a")
    assert report["format"] == "saved_model_2"
    parent = _warm_parent()
    second, again = _answer(mul, tmp_path / "b")
    assert again == report
    assert len({first, second, parent, os.getpid()}) == 4  # never the server, never reused
    assert _warm_parent() == parent
    for child in (first, second):  # each exits after its one upload (and is reaped)
        assert _gone(child)


def test_a_child_over_time_is_killed_and_the_parent_serves_the_next(mul, tmp_path):
    _answer(mul, tmp_path / "warm")
    home = tmp_path / "slow"
    home.mkdir()
    # A timeout no child can meet: a refusal that says so, and nothing left behind.
    with pytest.raises(PublishError, match="took too long"):
        validate.validate_model(mul, allow_unsafe_ops=False, timeout=1e-6, home=home)
    assert list(home.glob("validator-*")) == []
    info = validate.validate_model(mul, allow_unsafe_ops=False, timeout=60, home=tmp_path)
    assert info["format"] == "saved_model_2"
    assert list(tmp_path.glob("validator-*")) == []  # the child's home is removed


def test_a_dead_warm_parent_is_replaced(mul, tmp_path):
    _answer(mul, tmp_path / "warm")
    parent = _warm_parent()
    os.kill(parent, signal.SIGKILL)
    validate._FORKSERVER._proc.wait()
    info = validate.validate_model(mul, allow_unsafe_ops=False, timeout=120, home=tmp_path)
    assert info["format"] == "saved_model_2"
    assert _warm_parent() != parent


def test_closing_stops_the_warm_parent(mul, tmp_path):
    _answer(mul, tmp_path / "warm")
    proc = validate._FORKSERVER._proc
    validate._FORKSERVER.close()
    assert proc.wait(timeout=10) == 0  # it saw the end of its control socket and left
    info = validate.validate_model(mul, allow_unsafe_ops=False, timeout=120, home=tmp_path)
    assert info["format"] == "saved_model_2"  # started again on the next upload


def test_garbage_is_refused_by_the_child(tmp_path):
    model = tmp_path / "bad"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"garbage bytes")
    (tmp_path / "home").mkdir()
    with pytest.raises(PublishError, match="not an acceptable model") as err:
        validate.validate_model(model, allow_unsafe_ops=False, timeout=120, home=tmp_path / "home")
    assert str(model) not in str(err.value)
    assert list((tmp_path / "home").glob("validator-*")) == []
