"""The cache: completeness checks, re-downloads, locks, atomic installs, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading

import pytest

import tfhub as hub
from tfhub.handles import cache
from tfhub.testing import HostingServer, make_tarball, send


def _entry(handle):
    return cache.entry_path(handle)


def test_manifest_records_size_and_sha256(server):
    handle = server.url("test/text/1")
    path = hub.resolve(handle)
    manifest = json.loads(
        _entry(handle).with_name(_entry(handle).name + ".manifest.json").read_text()
    )
    assert manifest["handle"] == handle
    files = manifest["files"]
    assert "saved_model.pb" in files
    for rel, rec in files.items():
        assert os.path.getsize(os.path.join(path, rel)) == rec["size"]
        assert len(rec["sha256"]) == 64
    assert cache.verify_entry(_entry(handle)) == []


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_damaged_entry_is_downloaded_again(server, damage, caplog):
    handle = server.url("test/text/1")
    path = hub.resolve(handle)
    victim = os.path.join(path, "variables", "variables.data-00000-of-00001")
    if damage == "delete":
        os.remove(victim)
    else:
        with open(victim, "r+b") as f:
            f.truncate(3)
    assert cache.check_entry(_entry(handle)) is not None
    assert hub.resolve(handle) == path
    assert server.count("test/text/1") == 2
    assert cache.check_entry(_entry(handle)) is None
    assert "incomplete" in caplog.text


def test_altered_bytes_are_found_by_verify(server):
    handle = server.url("test/mul/1")
    path = hub.resolve(handle)
    victim = os.path.join(path, "saved_model.pb")
    with open(victim, "r+b") as f:
        f.seek(10)
        f.write(b"\xff")
    problems = cache.verify_entry(_entry(handle))
    assert len(problems) == 1 and "saved_model.pb has sha256" in problems[0]


def test_entry_without_manifest_gets_a_structural_check(server, tmp_path):
    """Entries written by tensorflow_hub have no manifest: missing shards are still caught."""
    handle = server.url("test/text/1")
    entry = _entry(handle)
    hub.resolve(handle)
    entry.with_name(entry.name + ".manifest.json").unlink()
    assert cache.check_entry(entry) is None
    os.remove(entry / "variables" / "variables.data-00000-of-00001")
    assert cache.check_entry(entry) == "variables/variables.index has no data shards"
    (entry / "variables" / "variables.data-00001-of-00002").write_bytes(b"x")
    assert cache.check_entry(entry) == "variables/variables.data-00000-of-00002 is missing"
    os.remove(entry / "saved_model.pb")
    assert "holds no saved_model.pb" in cache.check_entry(entry)


def test_empty_entry_is_downloaded_again(server):
    handle = server.url("test/mul/1")
    _entry(handle).mkdir(parents=True)
    assert os.path.isfile(os.path.join(hub.resolve(handle), "saved_model.pb"))
    assert server.count("test/mul/1") == 1


def test_failed_download_leaves_nothing(cache_dir):
    def broken(h):
        h.send_response(200)
        h.send_header("Content-Length", "11")
        h.end_headers()
        h.wfile.write(b"not a tar!!")

    with HostingServer({"m": broken}) as srv, pytest.raises(hub.ArchiveError):
        hub.resolve(srv.url("m"))
    assert os.listdir(cache_dir) == []


def test_unwritable_cache_is_a_clear_error(server, tmp_path, monkeypatch):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        monkeypatch.setenv("TFHUB_CACHE_DIR", str(blocker / "cache"))
    else:  # pragma: no cover - CI runs as root
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("TFHUB_CACHE_DIR", str(ro / "cache"))
    with pytest.raises(hub.CacheError, match=r"Cannot create the cache directory.*TFHUB_CACHE_DIR"):
        hub.resolve(server.url("test/mul/1"))


def test_lock_of_a_dead_process_is_taken_over_at_once(server):
    handle = server.url("test/mul/1")
    entry = _entry(handle)
    entry.parent.mkdir(parents=True)
    proc = multiprocessing.get_context("spawn").Process(target=int)
    proc.start()
    proc.join()
    lock = entry.with_name(entry.name + ".lock")
    lock.write_text(f"{socket.gethostname()}.{proc.pid}.deadbeef")
    assert os.path.isdir(hub.resolve(handle))
    assert not lock.exists()


def test_lock_without_progress_is_taken_over_after_the_timeout(server, monkeypatch, caplog):
    monkeypatch.setenv("TFHUB_LOCK_TIMEOUT", "1")
    handle = server.url("test/mul/1")
    entry = _entry(handle)
    entry.parent.mkdir(parents=True)
    lock = entry.with_name(entry.name + ".lock")
    lock.write_text("otherhost.123.cafe")
    assert os.path.isdir(hub.resolve(handle))
    assert "already being downloaded by otherhost.123.cafe" in caplog.text
    assert "Taking over the stale lock" in caplog.text


def test_concurrent_resolves_download_once(models):
    """Threads of one process and a second process share a single download."""
    body = make_tarball(models["text"])
    gate = threading.Event()

    def slow(h):
        gate.wait(10)
        send(h, body)

    with HostingServer({"m": slow}) as srv:
        handle = srv.url("m")
        results, errors = [], []

        def worker():
            try:
                results.append(hub.resolve(handle))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        threading.Timer(1.0, gate.set).start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(set(results)) == 1 and len(results) == 6
        assert srv.count("m") == 1
        assert cache.check_entry(_entry(handle)) is None


def test_garbled_lock_is_waited_on_then_taken_over(server, monkeypatch):
    """A lock file that is not UTF-8 is an unknown holder, not a reason to spin."""
    monkeypatch.setenv("TFHUB_LOCK_TIMEOUT", "1")
    handle = server.url("test/mul/1")
    entry = _entry(handle)
    entry.parent.mkdir(parents=True)
    entry.with_name(entry.name + ".lock").write_bytes(b"\xff\xfe\x00garbage")
    assert os.path.isdir(hub.resolve(handle))
    assert not entry.with_name(entry.name + ".lock").exists()


def test_tampered_bytes_are_refetched_when_verifying(server, monkeypatch):
    handle = server.url("test/mul/1")
    path = hub.resolve(handle)
    with open(os.path.join(path, "saved_model.pb"), "r+b") as f:
        f.seek(5)
        f.write(b"\xee")  # same size: only a hash can tell
    assert hub.resolve(handle) == path and server.count("test/mul/1") == 1
    monkeypatch.setenv("TFHUB_VERIFY_CACHE", "1")
    assert hub.resolve(handle) == path
    assert server.count("test/mul/1") == 2
    assert cache.verify_entry(_entry(handle)) == []


def test_disk_full_is_a_clear_error_and_leaves_nothing(server, tmp_path, monkeypatch):
    import subprocess

    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        monkeypatch.setenv("TFHUB_CACHE_DIR", str(small / "cache"))
        with pytest.raises(hub.CacheError, match=r"The disk is full.*tfhub cache prune"):
            hub.resolve(server.url("test/text/1"))
        assert os.listdir(small / "cache") == []  # no temp dir, no lock, no entry
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_shared_cache_follows_the_umask(server, cache_dir):
    """With a group umask (002) every file and directory of an entry is group-writable, so
    several users of one group can share the cache; the lock file too."""
    import stat

    old = os.umask(0o002)
    try:
        path = hub.resolve(server.url("test/text/1"))
    finally:
        os.umask(old)
    for dirpath, _, files in os.walk(path):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) & 0o070 == 0o070, dirpath
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) & 0o060 == 0o060
