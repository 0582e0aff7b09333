"""A cache shared with other users: nothing another user plants is used or written through.

The suite runs as root, and root bypasses the kernel's permission checks; so the "victim" runs
its resolve in a real subprocess as an ordinary uid, and the "attacker"'s files are created and
then given to uid 65534 (``nobody``). Everything happens in a scratch directory under /tmp that
these uids can reach. The model served is model-shaped bytes (resolve does not load it), both
as the plain tarball and, for the attacks on ``<sha1>.partial/``, by the tfhub fast path (a
files manifest and ranged blobs, served by a route below).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tfhub
from tests.helpers import tar_gz
from tfhub import protocol
from tfhub.handles import cache as hubcache
from tfhub.testing import HostingServer, send

VICTIM, ATTACKER = 4242, 65534
GROUP, MEMBER_A, MEMBER_B = 4300, 4301, 4302
SECRET = b"# the victim's own file\nexport PATH=/usr/bin\n"
FILES = {
    "saved_model.pb": b"\x08\x01" + os.urandom(70_000),  # two 64 KiB blocks on the fast path
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": os.urandom(5000),
}
_BLOCK = 64 << 10
_SRC = str(Path(tfhub.__file__).resolve().parent.parent)


def _files_manifest() -> bytes:
    files = []
    for i, (name, data) in enumerate(FILES.items()):
        blocks = [
            hashlib.sha256(data[o : o + _BLOCK]).hexdigest() for o in range(0, len(data), _BLOCK)
        ]
        files.append(
            {
                "path": name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "url": f"/blob/{i}",
                "blocks": blocks,
            }
        )
    doc = {"version": protocol.FILES_MANIFEST_VERSION, "block_size": _BLOCK, "files": files}
    return json.dumps(doc).encode()


def _model_route(h) -> None:
    if protocol.FILES_MEDIA_TYPE in h.headers.get("Accept", ""):
        send(h, _files_manifest(), headers=(("Content-Type", protocol.FILES_MEDIA_TYPE),))
    else:
        send(h, tar_gz(FILES), headers=(("Content-Type", "application/gzip"),))


def _blob_route(data: bytes):
    def route(h) -> None:
        rng = h.headers.get("Range", "")
        if not rng.startswith("bytes="):
            send(h, data)
            return
        start, end = (int(x) for x in rng[len("bytes=") :].split("-"))
        headers = (("Content-Range", f"bytes {start}-{end}/{len(data)}"),)
        send(h, data[start : end + 1], 206, headers)

    return route


@pytest.fixture()
def hosting() -> Iterator[HostingServer]:
    routes = {"pub/m/1": _model_route}
    routes.update({f"blob/{i}": _blob_route(d) for i, d in enumerate(FILES.values())})
    with HostingServer(routes) as srv:
        yield srv


@pytest.fixture()
def scratch() -> Iterator[Path]:
    """A directory every uid can reach (pytest's tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="tfhub-shared-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _python_for(uid: int) -> str:
    """An interpreter that ``uid`` may run: ours, or the system's of the same version."""
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"]
    for exe in candidates:
        try:
            subprocess.run([exe, "-c", ""], user=uid, group=uid, check=True, timeout=30, cwd="/")
        except (OSError, subprocess.SubprocessError):
            continue
        return exe
    raise AssertionError(f"no Python interpreter among {candidates} can be run by uid {uid}")


_RESOLVE = """
import json, sys, tfhub
try:
    print(json.dumps({"path": tfhub.resolve(sys.argv[1])}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                      "cache_error": isinstance(exc, tfhub.CacheError)}))
"""


def _run_as(
    uid: int,
    code: str,
    *args: str,
    cache: Path,
    groups: tuple[int, ...] = (),
    umask: int = 0o022,
    timeout: float = 40,
    lock_timeout: float = 120,
) -> object:
    """Runs ``code`` as ``uid`` with the cache at ``cache``; returns its last line of JSON
    (or ``{"error": "timeout"}``)."""
    env = {
        "PYTHONPATH": os.pathsep.join([_SRC, *site.getsitepackages()]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(cache.parent),
        "TFHUB_CACHE_DIR": str(cache),
        "TFHUB_LOCK_TIMEOUT": str(lock_timeout),
        "TFHUB_HTTP_TIMEOUT": "10",
    }
    try:
        proc = subprocess.run(
            [_python_for(uid), "-c", code, *args],
            user=uid,
            group=uid,
            extra_groups=list(groups),
            umask=umask,
            env=env,
            cwd=str(cache.parent),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timeout", "message": f"still running after {timeout} s"}
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, proc.stderr
    return json.loads(lines[-1])


def _resolve_as(uid: int, url: str, cache: Path, **kwargs: object) -> dict:
    start = time.monotonic()
    result = _run_as(uid, _RESOLVE, url, cache=cache, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, dict)
    return {**result, "seconds": time.monotonic() - start}


def _chown(path: Path, uid: int, gid: int | None = None) -> None:
    os.lchown(path, uid, uid if gid is None else gid)


def _setup(scratch: Path, *, sticky: bool) -> tuple[Path, Path]:
    """The shared cache (world-writable, with or without the sticky bit) and the victim's file."""
    cache = scratch / "cache"
    cache.mkdir()
    cache.chmod(0o1777 if sticky else 0o777)
    home = scratch / "victim"
    home.mkdir()
    _chown(home, VICTIM)
    target = home / ".bashrc"
    target.write_bytes(SECRET)
    _chown(target, VICTIM)
    return cache, target


def _plant(
    path: Path, *, link_to: Path | None = None, data: bytes | None = None, mode: int = 0o777
) -> None:
    """Creates ``path`` as the attacker: a link, a file, or a directory."""
    if link_to is not None:
        path.symlink_to(link_to)
    elif data is not None:
        path.write_bytes(data)
        path.chmod(mode & 0o666)
    else:
        path.mkdir()
        path.chmod(mode)
    _chown(path, ATTACKER)


def _assert_safe(result: dict, entry: Path, target: Path, *, planted: Path) -> None:
    """The victim's file is intact, and the resolve either installed a clean fresh download
    (a real directory of the victim's, regular files with the served bytes, no link) or
    failed with a CacheError naming the planted path and its owner."""
    assert target.read_bytes() == SECRET, "the victim's file was written through a link"
    assert os.lstat(target).st_uid == VICTIM
    if "path" in result:
        st = os.lstat(entry)
        assert result["path"] == str(entry)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == VICTIM, "a foreign entry was used"
        found = {}
        for dirpath, _, names in os.walk(entry):
            for name in names:
                full = Path(dirpath, name)
                assert stat.S_ISREG(os.lstat(full).st_mode), f"{full} is not a regular file"
                found[str(full.relative_to(entry))] = full.read_bytes()
        assert found == FILES
    else:
        assert result["error"] != "timeout", result
        assert result["cache_error"], result
        assert str(planted) in result["message"] and "uid 65534" in result["message"], result
        assert result["seconds"] < 20


def _wanted_state() -> str:
    """What the fast path writes in ``.partial/remote.json`` for this model (public data)."""
    files = json.loads(_files_manifest())["files"]
    return json.dumps(sorted([f["path"], f["sha256"]] for f in files))


@pytest.mark.parametrize("sticky", [True, False], ids=["sticky", "plain"])
def test_planted_partial_with_a_link_is_never_written_through(hosting, scratch, sticky):
    cache, target = _setup(scratch, sticky=sticky)
    url = hosting.url("pub/m/1")
    entry = hubcache.entry_path(url, cache)
    partial = entry.with_name(entry.name + ".partial")
    _plant(partial)
    _plant(partial / "remote.json", data=_wanted_state().encode())
    _plant(partial / "files")
    _plant(partial / "files" / "saved_model.pb", link_to=target)
    result = _resolve_as(VICTIM, url, cache)
    _assert_safe(result, entry, target, planted=partial)
    if not sticky:  # the victim could remove it: a clean fresh download
        assert "path" in result, result


@pytest.mark.parametrize("sticky", [True, False], ids=["sticky", "plain"])
@pytest.mark.parametrize("kind", ["directory", "link"])
def test_an_entry_planted_by_another_user_is_never_used(hosting, scratch, sticky, kind):
    cache, target = _setup(scratch, sticky=sticky)
    url = hosting.url("pub/m/1")
    entry = hubcache.entry_path(url, cache)
    evil = scratch / "evil"  # a complete-looking model with the attacker's bytes
    _plant(evil, mode=0o755)
    _plant(evil / "saved_model.pb", data=b"attacker's graph", mode=0o644)
    if kind == "link":
        _plant(entry, link_to=evil)
    else:
        shutil.copytree(evil, entry)
        for p in (entry, entry / "saved_model.pb"):
            _chown(p, ATTACKER)
    manifest = {"version": 1, "handle": url, "files": {"saved_model.pb": {"size": 16}}}
    _plant(Path(f"{entry}.manifest.json"), data=json.dumps(manifest).encode(), mode=0o644)
    _plant(Path(f"{entry}.descriptor.txt"), data=f"Module: {url}\n".encode(), mode=0o644)
    result = _resolve_as(VICTIM, url, cache)
    _assert_safe(result, entry, target, planted=entry)
    if not sticky:
        assert "path" in result, result
    assert (evil / "saved_model.pb").read_bytes() == b"attacker's graph"


@pytest.mark.parametrize("which", ["manifest.json", "descriptor.txt"])
def test_linked_manifest_or_descriptor_is_refused_before_downloading(hosting, scratch, which):
    cache, target = _setup(scratch, sticky=True)
    url = hosting.url("pub/m/1")
    entry = hubcache.entry_path(url, cache)
    planted = Path(f"{entry}.{which}")
    _plant(planted, link_to=target)
    result = _resolve_as(VICTIM, url, cache)
    _assert_safe(result, entry, target, planted=planted)
    assert "path" not in result and hosting.count("pub/m/1") == 0  # refused up front
    assert os.path.islink(planted) and not os.path.lexists(entry)


@pytest.mark.parametrize("sticky", [True, False], ids=["sticky", "plain"])
@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_foreign_lock_is_a_quick_cache_error_or_removed(hosting, scratch, sticky, kind):
    cache, target = _setup(scratch, sticky=sticky)
    url = hosting.url("pub/m/1")
    entry = hubcache.entry_path(url, cache)
    lock = Path(f"{entry}.lock")
    if kind == "link":
        _plant(lock, link_to=target)
    else:
        _plant(lock, data=b"elsewhere.1.cafe", mode=0o644)  # a holder that never progresses
    result = _resolve_as(VICTIM, url, cache)
    _assert_safe(result, entry, target, planted=lock)
    if sticky:
        assert "path" not in result and "TFHUB_CACHE_DIR" in result["message"]
    else:
        assert "path" in result and not os.path.lexists(lock), result


def test_group_shared_cache_works_for_every_member(hosting, scratch):
    """Two users of one group, umask 002, a setgid cache of that group: each one uses and
    repairs what the other downloaded; the download happens once per repair."""
    cache = scratch / "cache"
    cache.mkdir()
    os.chown(cache, 0, GROUP)
    cache.chmod(0o2775)
    url = hosting.url("pub/m/1")
    entry = hubcache.entry_path(url, cache)

    def resolve(uid: int) -> dict:
        return _resolve_as(uid, url, cache, groups=(GROUP,), umask=0o002)

    assert resolve(MEMBER_A)["path"] == str(entry)
    assert os.lstat(entry).st_uid == MEMBER_A and os.lstat(entry).st_gid == GROUP
    assert resolve(MEMBER_B)["path"] == str(entry)
    assert hosting.count("pub/m/1") == 1  # B used A's download
    (entry / "variables" / "variables.index").unlink()  # damaged: B downloads it again
    assert resolve(MEMBER_B)["path"] == str(entry)
    assert hosting.count("pub/m/1") == 2 and os.lstat(entry).st_uid == MEMBER_B
    assert resolve(MEMBER_A)["path"] == str(entry) and hosting.count("pub/m/1") == 2
    assert sorted(os.listdir(cache)) == sorted(
        [entry.name, f"{entry.name}.descriptor.txt", f"{entry.name}.manifest.json"]
    )


def test_prune_never_touches_another_users_files(hosting, scratch):
    """A dead holder's lock and temp dir of the user are pruned; another user's are kept."""
    cache, _ = _setup(scratch, sticky=True)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    host = os.uname().nodename
    mine, theirs = "a" * 40, "b" * 40
    for base, uid in ((mine, VICTIM), (theirs, ATTACKER)):
        lock = cache / f"{base}.lock"
        lock.write_text(f"{host}.{dead.pid}.cafe")
        tmp = cache / f"{base}.0123.tmp"
        tmp.mkdir()
        (tmp / "part").write_bytes(b"x")
        for p in (lock, tmp, tmp / "part"):
            _chown(p, uid)
    code = (
        "import json; from tfhub import config; from tfhub.handles import cache; "
        "print(json.dumps(cache.prune(config.cache_dir())))"
    )
    assert sorted(_run_as(VICTIM, code, cache=cache)) == [f"{mine}.0123.tmp", f"{mine}.lock"]
    assert sorted(os.listdir(cache)) == [f"{theirs}.0123.tmp", f"{theirs}.lock"]


def test_a_stale_lock_that_cannot_be_taken_over_is_a_cache_error(hosting, scratch):
    """A group member's lock of a dead process, in a sticky group cache: the other member may
    not remove it, so the resolve stops at once with a CacheError naming its owner."""
    cache = scratch / "cache"
    cache.mkdir()
    os.chown(cache, 0, GROUP)
    cache.chmod(0o3775)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    url = hosting.url("pub/m/1")
    lock = Path(f"{hubcache.entry_path(url, cache)}.lock")
    lock.write_text(f"{os.uname().nodename}.{dead.pid}.cafe")
    lock.chmod(0o664)
    _chown(lock, MEMBER_A, GROUP)
    result = _resolve_as(MEMBER_B, url, cache, groups=(GROUP,), umask=0o002)
    assert result.get("cache_error"), result
    assert str(lock) in result["message"] and f"uid {MEMBER_A}" in result["message"]
    assert result["seconds"] < 20 and lock.exists() and hosting.count("pub/m/1") == 0


def test_group_members_see_each_others_download_progress(scratch):
    """B waits on A's lock with a 2 s lock timeout while A's download takes about 6 s: B sees
    A's temp directory grow (it is 0750 in a group-shared cache), so it never takes the lock
    over, and the server sends the model once."""
    body = tar_gz(FILES)

    def slow(h) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for start in range(0, len(body), 2048):
            h.wfile.write(body[start : start + 2048])
            h.wfile.flush()
            time.sleep(6 / (len(body) / 2048))

    cache = scratch / "cache"
    cache.mkdir()
    os.chown(cache, 0, GROUP)
    cache.chmod(0o2775)
    with HostingServer({"pub/m/1": slow}) as srv:
        url = srv.url("pub/m/1")
        lock = Path(f"{hubcache.entry_path(url, cache)}.lock")
        results: dict[int, object] = {}

        def run(uid: int) -> None:
            kwargs = {"groups": (GROUP,), "umask": 0o002, "lock_timeout": 2}
            results[uid] = _resolve_as(uid, url, cache, **kwargs)

        first = threading.Thread(target=run, args=(MEMBER_A,))
        first.start()
        deadline = time.monotonic() + 20
        while not lock.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        run(MEMBER_B)
        first.join(60)
        assert srv.count("pub/m/1") == 1, results
    assert results[MEMBER_A]["path"] == results[MEMBER_B]["path"], results
