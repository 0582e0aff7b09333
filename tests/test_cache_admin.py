"""The cache administration API (list_entries, remove, verify, prune) and `tfhub cache`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import tfhub
from tests.helpers import REPO, tar_gz
from tfhub import cli
from tfhub.handles import cache
from tfhub.testing import HostingServer, send

FILES = {
    "saved_model.pb": b"\x08\x01" * 600,
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": os.urandom(3000),
}
SIZE = sum(map(len, FILES.values()))


def _resolve(url: str) -> str:
    return str(tfhub.resolve(url))


def _server() -> HostingServer:
    body = tar_gz(FILES)
    return HostingServer({"a/m/1": lambda h: send(h, body), "b/m/1": lambda h: send(h, body)})


def test_list_entries_gives_handle_size_files_and_last_use(cache_dir):
    with _server() as srv:
        a, b = srv.url("a/m/1"), srv.url("b/m/1")
        before = time.time()
        _resolve(a)
        _resolve(b)
    entries = {e.handle: e for e in cache.list_entries()}
    assert set(entries) == {a, b}
    ea = entries[a]
    assert ea.path == cache.entry_path(a) and ea.name == ea.path.name
    assert (ea.size, ea.files, ea.complete, ea.problem) == (SIZE, 3, True, None)
    assert before - 1 <= ea.last_used <= time.time() + 1
    # a cache hit records the use: the descriptor's mtime moves forward
    descriptor = ea.path.with_name(ea.name + cache.DESCRIPTOR_SUFFIX)
    os.utime(descriptor, (1_600_000_000, 1_600_000_000))
    assert {e.handle: e for e in cache.list_entries()}[a].last_used == 1_600_000_000
    assert cache.lookup(a) == ea.path
    assert {e.handle: e for e in cache.list_entries()}[a].last_used >= before - 1
    # an incomplete entry is listed with its problem
    (ea.path / "variables" / "variables.index").unlink()
    listed = {e.handle: e for e in cache.list_entries()}[a]
    assert not listed.complete and listed.problem == "variables/variables.index is missing"
    assert listed.size == SIZE - len(b"index") and listed.files == 2


def test_remove_and_verify(cache_dir):
    with _server() as srv:
        a, b = srv.url("a/m/1"), srv.url("b/m/1")
        _resolve(a)
        _resolve(b)
    assert [(e.handle, problems) for e, problems in cache.verify()] == sorted(
        [(a, []), (b, [])], key=lambda r: cache.entry_path(r[0]).name
    )
    victim = cache.entry_path(b) / "saved_model.pb"
    victim.write_bytes(b"\x09" + victim.read_bytes()[1:])
    report = {e.handle: problems for e, problems in cache.verify()}
    assert report[a] == [] and len(report[b]) == 1 and "saved_model.pb has sha256" in report[b][0]
    removed = cache.remove(a)
    assert [e.handle for e in removed] == [a]
    assert sorted(os.listdir(cache_dir)) == sorted(
        cache.entry_path(b).name + s for s in ("", ".descriptor.txt", ".manifest.json")
    )
    assert cache.remove(cache.entry_path(b).name)[0].handle == b  # by entry name too
    assert os.listdir(cache_dir) == [] and cache.remove(a) == []


def test_cli_list_shows_sizes_and_last_use_dates(cache_dir, capsys):
    with _server() as srv:
        a = srv.url("a/m/1")
        _resolve(a)
    entry = cache.entry_path(a)
    os.utime(entry.with_name(entry.name + ".descriptor.txt"), (1_700_000_000, 1_700_000_000))
    assert cli.main(["cache", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    day = time.strftime("%Y-%m-%d %H:%M", time.localtime(1_700_000_000))
    assert re.fullmatch(rf"{entry.name}\s+4\.2 kB\s+{day}\s+{re.escape(a)}", lines[0]), lines
    assert lines[-1] == "1 entries, 4.2 kB in total"
    assert cli.main(["cache", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["size"] == SIZE and row["files"] == 3 and row["handle"] == a
    assert row["complete"] is True and row["last_used"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.localtime(1_700_000_000))
    )


def _slow(body: bytes):
    def route(h) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            h.wfile.write(body[:100])
            h.wfile.flush()
            time.sleep(30)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return route


def test_prune_after_kill_9_leaves_no_stray_lock(cache_dir, capsys):
    """A resolve killed mid-download leaves its lock and temp dir; prune removes both."""
    with HostingServer({"m": _slow(tar_gz(FILES))}) as srv:
        url = srv.url("m")
        proc = subprocess.Popen(
            [sys.executable, "-c", "import tfhub, sys; tfhub.resolve(sys.argv[1])", url],
            env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))},
        )
        entry = cache.entry_path(url)
        deadline = time.monotonic() + 60
        while not any(n.endswith(".tmp") for n in _names(cache_dir)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    leftovers = sorted(_names(cache_dir))
    assert entry.name + ".lock" in leftovers and len(leftovers) == 2, leftovers
    capsys.readouterr()
    assert cli.main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert all(f"removed {n}" in out for n in leftovers), out
    assert _names(cache_dir) == []


def _names(path) -> list[str]:
    return os.listdir(path) if os.path.isdir(path) else []


def test_a_world_writable_file_makes_the_entry_unusable_and_is_replaced(cache_dir, capsys):
    """Anyone could have changed a world-writable file: the entry is not used, `cache list`
    says why, and the next resolve installs a fresh copy without the world-write bit."""
    with _server() as srv:
        a = srv.url("a/m/1")
        path = _resolve(a)
        victim = os.path.join(path, "saved_model.pb")
        os.chmod(victim, 0o666)
        assert cache.check_entry(cache.entry_path(a)) == "saved_model.pb is world-writable"
        assert cli.main(["cache", "list"]) == 0
        assert "(not usable: saved_model.pb is world-writable)" in capsys.readouterr().out
        assert _resolve(a) == path and srv.count("a/m/1") == 2
    assert os.stat(victim).st_mode & 0o002 == 0 and cache.check_entry(cache.entry_path(a)) is None


def test_umask_000_still_gives_a_usable_entry_that_nobody_else_can_write(cache_dir):
    with _server() as srv:
        old = os.umask(0)
        try:
            path = _resolve(srv.url("a/m/1"))
        finally:
            os.umask(old)
        assert _resolve(srv.url("a/m/1")) == path and srv.count("a/m/1") == 1  # a cache hit
    for dirpath, dirs, files in os.walk(path):
        for name in [".", *dirs, *files]:
            assert os.lstat(os.path.join(dirpath, name)).st_mode & 0o002 == 0, (dirpath, name)
