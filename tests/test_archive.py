"""Hostile and broken archives: a clear ArchiveError, nothing written outside, no cache entry."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

import tfhub as hub
from tfhub.testing import HostingServer, respond


def _tar(members, *, gz=True):
    """members: list of (TarInfo-kwargs, data-or-None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for kwargs, data in members:
            info = tarfile.TarInfo(kwargs["name"])
            for k, v in kwargs.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


MODEL = ({"name": "./saved_model.pb"}, b"\x0a\x00")

CASES = {
    "dotdot": (_tar([MODEL, ({"name": "../evil.txt"}, b"pwned")]), "outside the model directory"),
    "nested_dotdot": (
        _tar([MODEL, ({"name": "assets/../../evil.txt"}, b"pwned")]),
        "outside the model directory",
    ),
    "absolute": (_tar([MODEL, ({"name": "/tmp/evil.txt"}, b"pwned")]), "absolute path"),
    "symlink": (
        _tar([MODEL, ({"name": "link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None)]),
        "symbolic link",
    ),
    "hardlink": (
        _tar([MODEL, ({"name": "hl", "type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}, None)]),
        "hard link",
    ),
    "device": (_tar([MODEL, ({"name": "dev", "type": tarfile.CHRTYPE}, None)]), "device file"),
    "fifo": (_tar([MODEL, ({"name": "fifo", "type": tarfile.FIFOTYPE}, None)]), "FIFO"),
    "duplicate": (_tar([MODEL, ({"name": "saved_model.pb"}, b"other")]), "twice"),
    "truncated_gzip": (_tar([MODEL, ({"name": "big"}, os.urandom(50000))])[:-400], "valid module"),
    "not_an_archive": (b"this is not a tarball at all" * 10, "valid module"),
    "html": (b"<!DOCTYPE html><html><body>Error</body></html>", "valid module"),
    "root_not_model": (
        _tar([({"name": "model/saved_model.pb"}, b"\x0a\x00")]),
        r"no saved_model.pb.*'model/'.*tar -czf",
    ),
    "empty": (_tar([]), "empty archive"),
    "setuid": (_tar([MODEL, ({"name": "run", "mode": 0o4755}, b"#!/bin/sh")]), "setuid"),
    "file_then_dir": (
        _tar([MODEL, ({"name": "x"}, b"file"), ({"name": "x/y"}, b"under a file")]),
        "clashes with a file or directory",
    ),
    "dir_then_file": (
        _tar([MODEL, ({"name": "d", "type": tarfile.DIRTYPE}, None), ({"name": "d"}, b"f")]),
        "clashes with a file or directory",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archive(case, cache_dir, tmp_path):
    body, message = CASES[case]
    outside = tmp_path / "evil.txt"

    route = respond(body)

    with HostingServer({"m": route}) as srv:
        url = srv.url("m")
        with pytest.raises(hub.ArchiveError, match=message) as e:
            hub.resolve(url)
    assert e.value.handle == url
    assert not outside.exists() and not os.path.exists("/tmp/evil.txt")
    assert os.listdir(cache_dir) == []


def test_size_limit(cache_dir, monkeypatch):
    monkeypatch.setenv("TFHUB_MAX_MODEL_BYTES", "1000")
    body = _tar([MODEL, ({"name": "variables/big"}, b"\0" * 5000)])
    assert len(body) < 1000  # the bomb is small on the wire

    route = respond(body)

    with HostingServer({"m": route}) as srv:
        with pytest.raises(hub.ArchiveTooLargeError, match="TFHUB_MAX_MODEL_BYTES"):
            hub.resolve(srv.url("m"))
    assert os.listdir(cache_dir) == []


def test_gzip_content_encoding_is_decoded(models):
    from tfhub.testing import make_tarball

    body = gzip.compress(make_tarball(models["mul"], compress=False))

    def route(h):
        h.send_response(200)
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    with HostingServer({"m": route}) as srv:
        assert os.path.isfile(os.path.join(hub.resolve(srv.url("m")), "saved_model.pb"))


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        (tarfile.GNU_FORMAT, "w:gz"),
        (tarfile.PAX_FORMAT, "w:gz"),
        (tarfile.USTAR_FORMAT, "w"),
        (tarfile.PAX_FORMAT, "w:bz2"),
        (tarfile.GNU_FORMAT, "w:xz"),
    ],
)
def test_tar_dialects_and_compressions(fmt, mode, tmp_path):
    """Our tar reader handles what tar writers produce: GNU long names, pax headers (long and
    non-ASCII names), ustar prefixes, and gzip/bzip2/xz/plain streams."""
    import hashlib

    from tfhub.handles.archive import extract_tar_stream

    long_dir = "d" * 120 if fmt != tarfile.USTAR_FORMAT else "p" * 90  # ustar: prefix field
    files = {
        "saved_model.pb": b"\x0a\x00",
        f"assets/{long_dir}/vocab-{'x' * 60}.txt": os.urandom(70000),
        "variables/variables.index": b"",
    }
    if fmt == tarfile.PAX_FORMAT:
        files["assets/wörter-日本語.txt"] = "ä\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / "out"
    dest.mkdir()
    manifest = extract_tar_stream(io.BytesIO(buf.getvalue()), dest, source="t")
    assert {rel: (r.size, r.sha256) for rel, r in manifest.items()} == {
        name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in files.items()
    }
    for name, data in files.items():
        assert (dest / name).read_bytes() == data
