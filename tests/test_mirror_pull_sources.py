"""``tfhub mirror pull`` from local sources into a storage root (``--root``): a model directory
(``--as``), a tensorflow_hub-layout cache, a kagglehub-layout cache, ``--from-file``; the
summary and exit status; skipping what is mirrored, refusing a different model at a path,
resuming a run that was killed. Real SavedModels, the real publish validation, no mocks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import python_env
from tfhub.cli import main
from tfhub.handles.resolve import resolve
from tfhub.server.workdirs import remove_stale_workdirs
from tfhub.testing import HostingServer


def _save_mul(path: Path, value: float) -> Path:
    import tensorflow as tf

    from tests.helpers.models import MyMulModel

    tf.saved_model.save(MyMulModel(value), str(path))
    return path


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"a": _save_mul(root / "a", 2.0), "b": _save_mul(root / "b", 3.0)}


def _files(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _record(root: Path, path: str) -> dict:
    return json.loads((root / path / "meta.json").read_text())


def _mirrored_files(root: Path, path: str) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in _record(root, path)["blobs"]["files"]}


def _pull(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["mirror", "pull", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_model_directory_needs_as_then_is_skipped_on_a_rerun(two, tmp_path, capsys):
    root = tmp_path / "hub"
    code, _, err = _pull(capsys, str(two["a"]), "--root", str(root))
    assert code == 2 and "--as publisher/model/version" in err
    assert not root.exists() or not list(root.rglob("meta.json"))

    code, out, _ = _pull(capsys, str(two["a"]), "--root", str(root), "--as", "corp/mul/1")
    assert code == 0, out
    assert out.splitlines()[-1] == "1 mirrored, 0 skipped, 0 failed"
    record = _record(root, "corp/mul/1")
    assert record["provenance"]["source"] == str(two["a"].resolve())
    assert record["provenance"]["sha256"] is None and record["provenance"]["docs"] is None
    assert _mirrored_files(root, "corp/mul/1") == _files(two["a"])
    before = (root / "corp/mul/1/meta.json").read_bytes()

    code, out, _ = _pull(capsys, str(two["a"]), "--root", str(root), "--as", "corp/mul/1")
    assert code == 0
    assert "skipped" in out and "already mirrored (same files)" in out
    assert out.splitlines()[-1] == "0 mirrored, 1 skipped, 0 failed"
    assert (root / "corp/mul/1/meta.json").read_bytes() == before

    # a different model at the same path: a failure with its reason, nothing overwritten
    code, out, err = _pull(capsys, str(two["b"]), "--root", str(root), "--as", "corp/mul/1")
    assert code == 1
    assert out.splitlines()[-1] == "0 mirrored, 0 skipped, 1 failed"
    assert "a different model is already at corp/mul/1" in err
    assert (root / "corp/mul/1/meta.json").read_bytes() == before


def _tfhub_layout_cache(two, tmp_path, monkeypatch) -> tuple[Path, str]:
    """A cache in the tensorflow_hub layout (``<sha1>/`` + ``<sha1>.descriptor.txt``), filled
    by downloading from a local hosting server; plus a half-written entry."""
    cache = tmp_path / "tfhub_modules"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    with HostingServer({"google/mul/1": two["a"]}) as srv:
        handle = srv.url("google/mul/1")
        resolve(handle)
    half = cache / hashlib.sha1(b"https://tfhub.dev/google/half/1").hexdigest()
    shutil.copytree(two["b"], half)
    (cache / (half.name + ".lock")).write_text("host.1.abc")
    shutil.copytree(
        two["b"], cache / hashlib.sha1(b"https://tfhub.dev/g/no-descriptor/1").hexdigest()
    )
    dead = hashlib.sha1(b"https://tfhub.dev/g/dead-download/1").hexdigest()
    shutil.copytree(two["b"], cache / f"{dead}.0a1b2c.tmp")
    return cache, handle


def _kagglehub_cache(two, base: Path) -> Path:
    models = base / "kagglehub" / "models"
    for version, src, complete in (("1", "a", True), ("2", "b", False)):
        target = models / "Google" / "mul" / "tensorFlow2" / "mul" / version
        shutil.copytree(two[src], target)
        if complete:
            (target.parent / f"{version}.complete").touch()
    return base / "kagglehub"


def test_caches_from_a_file_lower_case_kaggle_paths_and_a_summary_of_failures(
    two, tmp_path, monkeypatch, capsys
):
    tf_cache, handle = _tfhub_layout_cache(two, tmp_path, monkeypatch)
    kaggle_cache = _kagglehub_cache(two, tmp_path)
    listing = tmp_path / "sources.txt"
    listing.write_text(
        f"# what we need offline\n{kaggle_cache}\n\n{tmp_path / 'missing'}  # gone\n"
        f"https://example.invalid/no-version\n{tf_cache}\n"
    )
    root = tmp_path / "hub"
    code, out, err = _pull(capsys, "--from-file", str(listing), "--root", str(root))
    assert code == 1
    assert out.splitlines()[-1] == "2 mirrored, 4 skipped, 2 failed"
    assert f"{tmp_path / 'missing'}: does not exist" in err
    assert "Cannot derive a mirror path from 'https://example.invalid/no-version'" in err
    assert "no 2.complete marker" in out  # kagglehub had not finished that one
    assert out.count("half-written tensorflow_hub cache entry") == 3
    assert sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("meta.json")) == [
        "google/mul/1",
        "google/mul/tensorflow2/mul/1",
    ]
    # the Kaggle model at its lower-case path, with the handle as the cache spelt it
    assert _mirrored_files(root, "google/mul/tensorflow2/mul/1") == _files(two["a"])
    prov = _record(root, "google/mul/tensorflow2/mul/1")["provenance"]
    assert prov["source"] == "https://www.kaggle.com/models/Google/mul/tensorFlow2/mul/1"
    # the tensorflow_hub cache entry under the path of its handle
    assert _record(root, "google/mul/1")["provenance"]["source"] == handle
    assert _mirrored_files(root, "google/mul/1") == _files(two["a"])


def test_a_killed_run_is_finished_by_running_it_again(two, tmp_path):
    """Killed after its first model, the run left only complete versions; the re-run skips
    them and mirrors the rest. Three versions: validating one takes milliseconds now (warm
    validator), so the kill may land after the second, never (in practice) after the third."""
    models = tmp_path / "kh" / "models"
    for version in range(1, 4):
        target = models / "o" / "m" / "tf" / "v" / str(version)
        shutil.copytree(two["a" if version % 2 else "b"], target)
        (target.parent / f"{version}.complete").touch()
    root = tmp_path / "hub"
    cmd = [sys.executable, "-m", "tfhub.cli", "mirror", "pull", str(tmp_path / "kh")]
    cmd += ["--root", str(root)]
    temp = tmp_path / "temp"  # the runs' temp directory, to see what they leave there
    temp.mkdir()
    env = python_env({"TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(temp)})
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.startswith("mirrored "), first
    assert len(list(temp.glob("tfhub-mirror-*"))) == 1  # what the killed run was working in
    done = sorted(p.parent.name for p in root.rglob("meta.json"))
    assert 1 <= len(done) < 3
    for version in done:  # what is visible is complete: its archive matches its record
        record = _record(root, f"o/m/tf/v/{version}")
        archive = root / record["archive"]["key"]
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == record["archive"]["sha256"]

    env["TFHUB_DOWNLOAD_PROGRESS"] = "1"
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "mirroring" in rerun.stderr  # the progress bar
    summary = rerun.stdout.splitlines()[-1]
    assert summary == f"{3 - len(done)} mirrored, {len(done)} skipped, 0 failed"
    for version in range(1, 4):
        expected = _files(two["a" if version % 2 else "b"])
        assert _mirrored_files(root, f"o/m/tf/v/{version}") == expected
    assert list(temp.glob("tfhub-mirror-*")) == []  # the killed run's was removed too


def test_only_the_leftovers_of_dead_runs_of_this_user_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(done.stdout)
    host = socket.gethostname()
    assert all(c.isalnum() or c in ".-" for c in host), host  # names use it as it is
    killed = tmp_path / f"tfhub-mirror-{host}-{dead}-abc"
    (killed / "cache").mkdir(parents=True)
    (killed / "cache" / "blob").write_bytes(b"x" * 1000)
    live = tmp_path / f"tfhub-mirror-{host}-{os.getpid()}-def"  # a run still going
    live.mkdir()
    elsewhere = tmp_path / f"tfhub-mirror-other.host-{dead}-ghi"  # another host's
    elsewhere.mkdir()
    target = tmp_path / "not-a-workdir"
    target.mkdir()
    (target / "keep").write_text("keep")
    link = tmp_path / f"tfhub-mirror-{host}-{dead}-jkl"  # a link is never followed
    link.symlink_to(target)
    kept = [live.name, elsewhere.name, target.name, link.name]
    if os.geteuid() == 0:  # as root (CI here), another user's leftover can be made too
        theirs = tmp_path / f"tfhub-mirror-{host}-{dead}-mno"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)
        kept.append(theirs.name)
    assert remove_stale_workdirs("mirror") == [str(killed)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert (target / "keep").read_text() == "keep"


def test_a_directory_holding_a_link_is_a_failure_and_publishes_nothing(two, tmp_path, capsys):
    model = tmp_path / "linked"
    shutil.copytree(two["a"], model)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the hub")
    (model / "assets").mkdir(exist_ok=True)
    (model / "assets" / "vocab.txt").symlink_to(secret)
    root = tmp_path / "hub"
    code, out, err = _pull(capsys, str(model), "--root", str(root), "--as", "corp/linked/1")
    assert code == 1
    assert out.splitlines()[-1] == "0 mirrored, 0 skipped, 1 failed"
    assert "is not a plain file" in err
    assert not list(root.rglob("meta.json")) if root.exists() else True
    assert not any(p.is_file() and p.read_bytes() == b"not for the hub" for p in root.rglob("*"))
