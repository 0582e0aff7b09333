"""A hostile server cannot exhaust or misuse the client (issue 11, items 5, 7, 8 and 9).

Every test runs a real server on 127.0.0.1 (port 0); side effects are checked on disk.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

import tfhub as hub
from tfhub import errors
from tfhub.handles import cache
from tfhub.testing import HostingServer, make_tarball, send

FILES_TYPE = "application/vnd.tfhub.files+json"
BLOCK = 4 << 20
MiB = 1 << 20
# (resolved like this so that the file also runs, and fails, against the code before the fix)
SlowTransferError = getattr(errors, "SlowTransferError", hub.DownloadError)


def _disk_usage(root: Path) -> int:
    """Bytes actually allocated on disk under ``root`` (sparse holes do not count)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def _partials(root: Path) -> list[str]:
    return [n for n in os.listdir(root) if n.endswith(".partial")]


def _manifest_route(files: list[dict]):
    body = json.dumps({"version": 1, "block_size": BLOCK, "files": files}).encode()
    return lambda h: send(h, body, headers=(("Content-Type", FILES_TYPE),))


def _file(path: str, data: bytes, url: str) -> dict:
    blocks = [hashlib.sha256(data[o : o + BLOCK]).hexdigest() for o in range(0, len(data), BLOCK)]
    sha = hashlib.sha256(data).hexdigest()
    return {"path": path, "size": len(data), "sha256": sha, "url": url, "blocks": blocks}


def _ranged(data: bytes):
    """A blob route that answers range requests with ``data``."""

    def route(h):
        match = re.match(r"bytes=(\d+)-(\d+)", h.headers.get("Range", ""))
        start, end = (int(match[1]), int(match[2])) if match else (0, len(data) - 1)
        rng = f"bytes {start}-{end}/{len(data)}"
        send(h, data[start : end + 1], 206, (("Content-Range", rng),))

    return route


# --- item 5: no disk reserved ahead of verified data; .partial/ removed after a refusal -------


def test_a_huge_announced_file_whose_blob_404s_reserves_no_disk(cache_dir):
    size = 4 << 30
    seen: dict[str, int] = {}

    def blob(h):
        seen["usage"] = _disk_usage(cache_dir)
        partial = [cache_dir / n for n in _partials(cache_dir)]
        seen["mode"] = stat.S_IMODE(os.stat(partial[0]).st_mode) if partial else -1
        send(h, b"gone", 404, (("Content-Type", "text/plain"),))

    entry = {
        "path": "saved_model.pb",
        "size": size,
        "sha256": "0" * 64,
        "url": "/blob",
        "blocks": ["0" * 64] * (size // BLOCK),
    }
    with HostingServer({"m": _manifest_route([entry]), "blob": blob}) as srv:
        with pytest.raises(hub.RemoteNotFoundError):
            hub.resolve(srv.url("m"))
    assert "usage" in seen, "the blob was requested"
    assert seen["usage"] < 8 * MiB  # nothing reserved ahead of the data (was 4 GiB)
    assert seen["mode"] == 0o700  # .partial/ is private to its owner
    assert _partials(cache_dir) == []  # a refusal is not worth resuming: removed
    assert _disk_usage(cache_dir) < MiB


def test_partial_state_is_kept_after_a_transient_failure(cache_dir, monkeypatch):
    """A broken connection (not a refusal) keeps the verified blocks for the next attempt."""
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "0")
    data = os.urandom(2 * BLOCK + 100)

    def broken(h):
        h.send_response(206)
        h.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: BLOCK + 10])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)

    routes = {"m": _manifest_route([_file("saved_model.pb", data, "/blob")]), "blob": broken}
    with HostingServer(routes) as srv:
        with pytest.raises(hub.DownloadError):
            hub.resolve(srv.url("m"))
    assert len(_partials(cache_dir)) == 1


# --- item 7: an overall deadline and a minimum rate ------------------------------------------


def _trickle(
    stop: threading.Event, *, every: float, piece: bytes, length: int, status=200, prefix=b""
):
    def route(h):
        h.send_response(status)
        h.send_header("Content-Length", str(length))
        if status == 206:
            h.send_header("Content-Range", f"bytes 0-{length - 1}/{length}")
        h.end_headers()
        start = time.monotonic()
        try:
            h.wfile.write(prefix)
            while not stop.is_set() and time.monotonic() - start < 30:
                h.wfile.write(piece)
                h.wfile.flush()
                stop.wait(every)
        except OSError:
            pass  # the client gave up
        h.close_connection = True

    return route


def test_a_one_byte_every_two_seconds_trickle_fails_within_the_bound(cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_HTTP_TIMEOUT", "5")
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "0")
    stop = threading.Event()
    with HostingServer({"m": _trickle(stop, every=2, piece=b"\x1f", length=100_000)}) as srv:
        url = srv.url("m")
        start = time.monotonic()
        try:
            with pytest.raises(SlowTransferError, match="TFHUB_HTTP_MIN_RATE") as e:
                hub.resolve(srv.url("m"))
        finally:
            elapsed = time.monotonic() - start
            stop.set()
    assert elapsed < 15  # was still downloading after 40 s
    assert isinstance(e.value, hub.DownloadError) and e.value.handle == url
    assert [n for n in os.listdir(cache_dir) if not n.endswith(".lock")] == []


def test_the_fast_path_trickle_fails_too(cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_HTTP_TIMEOUT", "3")
    data = os.urandom(100_000)
    stop = threading.Event()
    routes = {
        "m": _manifest_route([_file("saved_model.pb", data, "/blob")]),
        "blob": _trickle(stop, every=1, piece=b"x", length=len(data), status=206),
    }
    with HostingServer(routes) as srv:
        start = time.monotonic()
        try:
            with pytest.raises(SlowTransferError, match="too slow"):
                hub.resolve(srv.url("m"))
        finally:
            elapsed = time.monotonic() - start
            stop.set()
    assert elapsed < 12


def test_the_download_deadline(cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_DOWNLOAD_DEADLINE", "3")
    monkeypatch.setenv("TFHUB_HTTP_MIN_RATE", "0")
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "0")
    stop = threading.Event()
    head = _header("saved_model.pb", 10 << 20, tarfile.REGTYPE)
    route = _trickle(stop, every=0.1, piece=bytes(2048), length=10 << 20, prefix=head)
    with HostingServer({"m": route}) as srv:
        start = time.monotonic()
        try:
            with pytest.raises(SlowTransferError, match="TFHUB_DOWNLOAD_DEADLINE"):
                hub.resolve(srv.url("m"))
        finally:
            elapsed = time.monotonic() - start
            stop.set()
    assert 2.5 < elapsed < 10


def test_bad_rate_settings_are_config_errors(monkeypatch):
    from tfhub import config

    monkeypatch.setenv("TFHUB_HTTP_MIN_RATE", "fast")
    with pytest.raises(hub.ConfigError, match="TFHUB_HTTP_MIN_RATE"):
        config.http_min_rate()
    monkeypatch.setenv("TFHUB_DOWNLOAD_DEADLINE", "-1")
    with pytest.raises(hub.ConfigError, match="TFHUB_DOWNLOAD_DEADLINE"):
        config.download_deadline()
    monkeypatch.setenv("TFHUB_MAX_MODEL_FILES", "0")
    with pytest.raises(hub.ConfigError, match="TFHUB_MAX_MODEL_FILES"):
        config.max_model_files()


# --- item 8: every decompressed byte counts, and the members are capped ----------------------


def _header(name: str, size: int, kind: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(tarfile.GNU_FORMAT)


def _model_tail() -> bytes:
    data = b"\x0a\x00"
    return (
        _header("saved_model.pb", len(data), tarfile.REGTYPE) + data.ljust(512, b"\0") + bytes(1024)
    )


@pytest.fixture(scope="module")
def zeros_64m() -> bytes:
    return bz2.compress(bytes(64 * MiB))


@pytest.fixture(scope="module")
def directory_bomb(zeros_64m) -> bytes:
    """A bzip2 tar whose directory member carries 2 GiB of data (concatenated streams)."""
    head = bz2.compress(_header("big/", 2 << 30, tarfile.DIRTYPE))
    return head + zeros_64m * 32 + bz2.compress(_model_tail())


@pytest.fixture(scope="module")
def pax_bomb() -> bytes:
    """A bzip2 tar holding 1 GiB of global pax headers (1 MiB each) before a tiny model."""
    unit = bz2.compress(_header("pax_global_header", MiB, tarfile.XGLTYPE) + bytes(MiB))
    return unit * 1024 + bz2.compress(_model_tail())


def _extract(body: bytes, tmp_path: Path, **limits):
    from tfhub.handles.archive import extract_tar_stream

    dest = tmp_path / "out"
    dest.mkdir()
    return extract_tar_stream(io.BytesIO(body), dest, source="hostile", **limits)


@pytest.mark.parametrize("bomb", ["directory_bomb", "pax_bomb"])
def test_decompressed_headers_and_directory_data_count(bomb, request, tmp_path):
    body = request.getfixturevalue(bomb)
    assert len(body) < 128 << 10  # tiny on the wire
    start = time.monotonic()
    with pytest.raises(hub.ArchiveTooLargeError, match="more than 1048576 bytes"):
        _extract(body, tmp_path, max_bytes=MiB)
    assert time.monotonic() - start < 3  # refused early, not after inflating 1-2 GiB
    assert _disk_usage(tmp_path) < MiB


def test_the_bombs_stay_small_in_memory(directory_bomb, pax_bomb, tmp_path):
    """Peak memory of a fresh process refusing each bomb (the limit is checked before any
    member data or header record is read)."""
    for name, body in (("dir", directory_bomb), ("pax", pax_bomb)):
        (tmp_path / name).write_bytes(body)
        (tmp_path / f"{name}-out").mkdir()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tfhub.handles.archive import extract_tar_stream\n"
        "from tfhub.errors import ArchiveTooLargeError\n"
        "for name in ('dir', 'pax'):\n"
        "    try:\n"
        "        with open(Path(sys.argv[1]) / name, 'rb') as f:\n"
        "            extract_tar_stream(f, Path(sys.argv[1]) / f'{name}-out', source=name,\n"
        "                               max_bytes=1 << 20)\n"
        "    except ArchiveTooLargeError:\n"
        "        print(name, 'refused')\n"
        # VmHWM: this process's own peak (ru_maxrss would carry over the parent's across exec).
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out[:4] == ["dir", "refused", "pax", "refused"]
    assert int(out[4]) < 150_000  # KiB: the interpreter plus a few 1 MiB chunks


def test_the_directory_bomb_is_refused_through_resolve(directory_bomb, cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_MAX_MODEL_BYTES", str(MiB))
    with HostingServer({"m": lambda h: send(h, directory_bomb)}) as srv:
        start = time.monotonic()
        with pytest.raises(hub.ArchiveTooLargeError, match="TFHUB_MAX_MODEL_BYTES"):
            hub.resolve(srv.url("m"))
        assert time.monotonic() - start < 5
    assert [n for n in os.listdir(cache_dir) if not n.endswith(".lock")] == []


def test_the_number_of_members_is_capped(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(50):
            info = tarfile.TarInfo(f"f{i}")
            tar.addfile(info, io.BytesIO(b""))
        info = tarfile.TarInfo("saved_model.pb")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"\x0a\x00"))
    with pytest.raises(hub.ArchiveTooLargeError, match="more than 10 files"):
        _extract(buf.getvalue(), tmp_path, max_files=10)
    monkeypatch.setenv("TFHUB_MAX_MODEL_FILES", "10")
    with HostingServer({"m": lambda h: send(h, buf.getvalue())}) as srv:
        with pytest.raises(hub.ArchiveTooLargeError, match="TFHUB_MAX_MODEL_FILES"):
            hub.resolve(srv.url("m"))


def test_a_manifest_with_too_many_files_is_refused_before_any_blob(cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_MAX_MODEL_FILES", "10")
    files = [_file(f"f{i}", b"x", "/blob") for i in range(10)]
    files.append(_file("saved_model.pb", b"\x0a\x00", "/blob"))
    with HostingServer({"m": _manifest_route(files), "blob": _ranged(b"x")}) as srv:
        with pytest.raises(hub.ArchiveTooLargeError, match="TFHUB_MAX_MODEL_FILES"):
            hub.resolve(srv.url("m"))
        assert srv.count("blob") == 0


# --- item 9: fast-path URLs stay on the manifest's origin -------------------------------------


def test_a_manifest_cannot_send_the_client_to_another_port(cache_dir):
    data = b"\x0a\x00"
    with HostingServer({"steal": _ranged(data)}) as other:
        routes = {"m": _manifest_route([_file("saved_model.pb", data, other.url("steal"))])}
        with HostingServer(routes) as srv:
            with pytest.raises(hub.ProtocolError, match="manifest's origin"):
                hub.resolve(srv.url("m"))
        assert other.requests == []  # not a single request reached the other service


def test_a_blob_redirect_installs_only_the_manifests_bytes(cache_dir):
    """A hub may redirect a blob (its storage's presigned URL): the redirect is followed
    (tfhub.handles.redirects) but what comes back must match the manifest's block hashes."""
    data = b"\x0a\x00"
    with HostingServer({"steal": _ranged(b"\x0a\x01")}) as other:
        routes = {
            "m": _manifest_route([_file("saved_model.pb", data, "/blob")]),
            "blob": lambda h: send(h, b"", 302, (("Location", other.url("steal")),)),
        }
        with HostingServer(routes) as srv:
            with pytest.raises(hub.ProtocolError, match="sha256"):
                hub.resolve(srv.url("m"))


# --- the partial directory is private and never written through links --------------------------


def _plant(files_dir: Path, victim: Path, data: bytes) -> None:
    """A partial state in ``files_dir`` for a model of ``data``, its file a link to ``victim``."""
    (files_dir / "files").mkdir(parents=True, exist_ok=True)
    state = json.dumps(sorted([["saved_model.pb", hashlib.sha256(data).hexdigest()]]))
    (files_dir / "remote.json").write_text(state)
    (files_dir / "files" / "saved_model.pb").symlink_to(victim)


DATA = b"\x0a\x00modelbytes"
VICTIM = b"precious!!!!"  # the same size as DATA: a resume would write into it


def _partial_in(how: str, partial: Path, tmp_path: Path, victim: Path) -> None:
    if how == "partial_is_a_link":
        _plant(tmp_path / "attacker", victim, DATA)
        partial.symlink_to(tmp_path / "attacker")
    elif how == "file_is_a_link":
        partial.mkdir(mode=0o700)
        _plant(partial, victim, DATA)
    else:  # another user's
        partial.mkdir(mode=0o700)
        (partial / "theirs").write_text("x")
        os.chown(partial, 65534, 65534)


HOW = ["partial_is_a_link", "file_is_a_link"] + (["foreign"] if os.geteuid() == 0 else [])


@pytest.mark.parametrize("how", HOW)
def test_the_fast_path_never_writes_through_planted_partial_state(how, tmp_path):
    """The fast path itself (whatever the cache checked before) refuses a partial directory
    that is a link or another user's, and opens its files without following links."""
    from tfhub.handles import fastpath

    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    partial, dest = tmp_path / "entry.partial", tmp_path / "dest"
    dest.mkdir()
    _partial_in(how, partial, tmp_path, victim)
    routes = {"m": _manifest_route([_file("saved_model.pb", DATA, "/blob")]), "blob": _ranged(DATA)}
    with HostingServer(routes) as srv:
        doc = json.dumps(
            {"version": 1, "block_size": BLOCK, "files": [_file("saved_model.pb", DATA, "/blob")]}
        )
        manifest = fastpath.parse_files_manifest(doc.encode(), handle="h", url=srv.url("m"))
        owner = "nobody|65534" if how == "foreign" else "root|uid"
        with pytest.raises(hub.CacheError, match=re.escape(str(partial))) as e:
            fastpath.download_files("h", manifest, dest, partial)
        if how != "file_is_a_link":
            assert re.search(owner, str(e.value))  # names the owner
            assert srv.count("blob") == 0
    assert victim.read_bytes() == VICTIM
    assert os.listdir(dest) == []
    if how == "foreign":
        assert (partial / "theirs").read_text() == "x"  # not touched


def test_a_directory_of_someone_else_is_never_our_partial_state(tmp_path):
    from tfhub.handles import fastpath

    theirs = Path("/usr")  # root's, when we are not root
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
    owner = os.stat(theirs).st_uid
    with pytest.raises(hub.CacheError, match=rf"{re.escape(str(theirs))} belongs to .*uid {owner}"):
        fastpath._private_dir(theirs)
    assert theirs.is_dir()


@pytest.mark.parametrize("how", HOW)
def test_resolve_with_planted_partial_state(how, cache_dir, tmp_path):
    """End to end (the cache may discard the planted state first): the link's target keeps
    its bytes, and the result is a clean download or a CacheError naming the path."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    routes = {"m": _manifest_route([_file("saved_model.pb", DATA, "/blob")]), "blob": _ranged(DATA)}
    with HostingServer(routes) as srv:
        url = srv.url("m")
        partial = cache.partial_path(cache.entry_path(url, cache_dir))
        cache_dir.mkdir(parents=True, exist_ok=True)
        _partial_in(how, partial, tmp_path, victim)
        try:
            path = Path(hub.resolve(url))
        except hub.CacheError as exc:
            assert str(partial) in str(exc)
        else:
            assert sorted(os.listdir(path)) == ["saved_model.pb"]
            assert (path / "saved_model.pb").read_bytes() == DATA
            assert not (path / "saved_model.pb").is_symlink()
    assert victim.read_bytes() == VICTIM


# --- errors: the server's message, no retries where they cannot help ---------------------------


def test_the_servers_error_message_is_kept(cache_dir):
    body = json.dumps({"error": "the token for acme expired at noon"}).encode()
    routes = {
        "m": lambda h: send(h, body, 403, (("Content-Type", "application/json"),)),
        "p": lambda h: send(
            h, b"No model at /p: try version 2", 404, (("Content-Type", "text/plain"),)
        ),
    }
    with HostingServer(routes) as srv:
        with pytest.raises(hub.DownloadError, match="the token for acme expired at noon") as e:
            hub.resolve(srv.url("m"))
        assert e.value.status == 403
        with pytest.raises(hub.RemoteNotFoundError, match="try version 2"):
            hub.resolve(srv.url("p"))


def test_an_unknown_host_is_not_retried_and_says_what_to_do(cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "4")
    start = time.monotonic()
    with pytest.raises(hub.DownloadError, match=r"resolve the host name.*TFHUB_OFFLINE=1.*mirror"):
        hub.resolve("http://tfhub-test.invalid/acme/model/1")
    assert time.monotonic() - start < 2  # four backoffs would take several seconds


def test_retries_do_not_multiply(cache_dir, tmp_path, monkeypatch):
    """A server that alternates 503 and a body cut short: one budget for the whole transfer."""
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "2")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(os.urandom(200_000))
    body = make_tarball(tmp_path / "model")
    count = [0]

    def flaky(h):
        count[0] += 1
        if count[0] % 2:
            send(h, b"", 503, (("Retry-After", "0"),))
            return
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True

    with HostingServer({"m": flaky}) as srv:
        with pytest.raises(hub.DownloadError):
            hub.resolve(srv.url("m"))
        assert srv.count("m") <= 3  # retries + 1, not (retries + 1) ** 2
