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


def _extract(body: bytes, tmp_path):
    from tfhub.handles.archive import extract_tar_stream

    dest = tmp_path / "out"
    dest.mkdir()
    return extract_tar_stream(io.BytesIO(body), dest, source="t")


def test_plain_tar_cut_at_a_member_boundary_is_refused(tmp_path):
    """A stream that stops right after a member (no end-of-archive blocks) is truncated, not a
    smaller model."""
    body = _tar([MODEL, ({"name": "variables/variables.index"}, b"x" * 100)], gz=False)
    cut = body[: 512 * 4]  # two headers and two data blocks, no end marker
    with pytest.raises(hub.ArchiveError, match="end-of-archive marker"):
        _extract(cut, tmp_path)


def test_headers_with_signed_checksums_are_accepted(tmp_path):
    """Some old writers summed header bytes as signed chars."""
    info = tarfile.TarInfo("saved_model.pb")
    info.uname, info.size = "jürgen", 2  # GNU format: the name's UTF-8 bytes in the header
    body = bytearray(info.tobuf(tarfile.GNU_FORMAT, "utf-8") + b"\x0a\x00".ljust(512, b"\0"))
    body += bytes(1024)
    header = body[:512]
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    signed = unsigned - 256 * sum(1 for b in header[:148] + header[156:] if b > 127)
    assert signed != unsigned  # the header really has bytes over 127
    body[148:156] = b"%06o\0 " % signed
    assert set(_extract(bytes(body), tmp_path)) == {"saved_model.pb"}


def test_malformed_pax_headers_are_archive_errors(tmp_path):
    record = b"size=abc\n"
    line = b"%d " % (len(record) + 3) + record
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = len(line)
    body = pax.tobuf(tarfile.USTAR_FORMAT) + line.ljust(512, b"\0")
    body += _tar([MODEL], gz=False)
    with pytest.raises(hub.ArchiveError, match="bad pax size"):
        _extract(body, tmp_path)


def test_decompression_hands_out_bounded_chunks():
    """A stream that inflates enormously (64 MB of zeros from 64 kB) never becomes one huge
    chunk: memory stays at a few MB whatever the ratio."""
    from tfhub.handles.transfer import PipelinedStream

    stream = PipelinedStream(io.BytesIO(gzip.compress(bytes(64 << 20), compresslevel=9)))
    sizes = []
    while chunk := stream.read_chunk():
        sizes.append(len(chunk))
    stream.close()
    assert sum(sizes) == 64 << 20 and max(sizes) <= 1 << 20


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_concatenated_streams_split_at_a_read_boundary(kind):
    import bz2
    import lzma

    from tfhub.handles.transfer import PipelinedStream

    compress = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind]
    parts = [compress(b"first part "), compress(b"second part")]

    class OneStreamPerRead:
        def read(self, n):
            return parts.pop(0) if parts else b""

    stream = PipelinedStream(OneStreamPerRead())
    data = b""
    while chunk := stream.read_chunk():
        data += chunk
    stream.close()
    assert data == b"first part second part"
