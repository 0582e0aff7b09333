"""The `tfhub` command, in-process and as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.helpers import REPO
from tfhub import cli
from tfhub.handles import cache


def _tfhub_exe() -> list[str]:
    exe = shutil.which("tfhub", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "tfhub.cli"]


def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import sys\nfrom tfhub import cli\ntry:\n    cli.main(['--help'])\n"
        "except SystemExit:\n    pass\nprint('TF', 'tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert "resolve" in out and "cache" in out and "TF False" in out
    proc = subprocess.run([*_tfhub_exe(), "--help"], capture_output=True, text=True, check=True)
    assert "usage: tfhub" in proc.stdout


def test_resolve_and_cache_commands(server, cache_dir, capsys):
    url = server.url("test/mul/1")
    assert cli.main(["resolve", url]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(cache.entry_path(url))
    assert cli.main(["cache", "dir"]) == 0
    assert capsys.readouterr().out.strip() == str(cache_dir)
    assert cli.main(["cache", "list"]) == 0
    assert url in capsys.readouterr().out
    assert cli.main(["cache", "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    with open(os.path.join(path, "saved_model.pb"), "r+b") as f:
        f.write(b"\0\0\0")
    assert cli.main(["cache", "verify"]) == 1
    assert "saved_model.pb has sha256" in capsys.readouterr().out


def test_errors_are_one_clear_line_with_an_exit_code_per_class(tmp_path, capsys, server):
    assert cli.main(["resolve", str(tmp_path / "missing")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("tfhub: error: ") and "does not exist" in err
    assert cli.main(["resolve", "ftp://nowhere/x"]) == 2
    assert cli.main(["resolve", server.url("test/none/1")]) == 3  # 404
    (tmp_path / "empty").mkdir()
    assert cli.main(["inspect", str(tmp_path / "empty")]) == 5
    assert "holds neither" in capsys.readouterr().err


def test_subprocess_resolve(server):
    proc = subprocess.run(
        [*_tfhub_exe(), "resolve", server.url("test/mul/1")],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(os.path.join(proc.stdout.strip(), "saved_model.pb"))


def test_cache_prune_removes_broken_entries_and_crash_leftovers(server, cache_dir, capsys):
    good = cache.entry_path(server.url("test/mul/1"))
    broken = cache.entry_path(server.url("test/text/1"))
    cli.main(["resolve", server.url("test/mul/1")])
    cli.main(["resolve", server.url("test/text/1")])
    os.remove(broken / "saved_model.pb")
    (cache_dir / "abc.0123.tmp").mkdir()  # a download killed mid-way
    (cache_dir / "abc.0123.tmp" / "part").write_bytes(b"x")
    (cache_dir / "orphan.manifest.json").write_text("{}")
    capsys.readouterr()
    assert cli.main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert broken.name in out and "abc.0123.tmp" in out and "orphan.manifest.json" in out
    assert good.is_dir() and not broken.exists()
    assert sorted(os.listdir(cache_dir)) == sorted(
        [good.name, good.name + ".descriptor.txt", good.name + ".manifest.json"]
    )
    assert cli.main(["cache", "rm", "nothing-like-this"]) == 1
