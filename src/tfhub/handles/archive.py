"""Safe streaming extraction of model archives.

Every archive is treated as hostile: only regular files and directories are written, member
names must stay inside the destination (no ``..``, no absolute paths), duplicate members are
refused, and what decompression produces is bounded: every byte of it (headers, pax and GNU
extension records, directory members' data, padding) counts toward ``TFHUB_MAX_MODEL_BYTES``,
and the members toward ``TFHUB_MAX_MODEL_FILES``, both checked before the bytes are read. The
archive is read as a stream (plain tar, gzip, bz2 or xz), never stored whole.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tfhub import config
from tfhub.errors import ArchiveError, ArchiveTooLargeError
from tfhub.handles.cache import FileRecord, Manifest
from tfhub.handles.transfer import CorruptStreamError, PipelinedStream
from tfhub.protocol import safe_relative_path

__all__ = ["extract_tar_stream", "safe_member_path"]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_MAX_META = 1 << 20  # longest GNU long-name or pax extension header we accept
# What a corrupt or truncated archive raises while being read.
_READ_ERRORS: tuple[type[Exception], ...] = (EOFError, CorruptStreamError)


def safe_member_path(name: str, *, source: str) -> str | None:
    """The normalized relative path of a tar member, or None for the root itself (see
    :func:`tfhub.protocol.safe_relative_path`).

    Raises:
        ArchiveError: the name is absolute or escapes the archive root.
    """
    return safe_relative_path(name, source=source)


class _Chunks:
    """Exact-size reads over a source of chunks, handing out views instead of copies."""

    def __init__(self, read_chunk: Callable[[], bytes]) -> None:
        self._read_chunk = read_chunk
        self._rest = memoryview(b"")

    def take(self, limit: int) -> memoryview:
        """Up to ``limit`` bytes (fewer when a chunk ends first; empty at the end)."""
        if not self._rest:
            self._rest = memoryview(self._read_chunk())
        view, self._rest = self._rest[:limit], self._rest[limit:]
        return view

    def exactly(self, n: int) -> bytes | None:
        """Exactly ``n`` bytes; None at a clean end of stream, EOFError when cut short."""
        parts: list[memoryview] = []
        got = 0
        while got < n:
            view = self.take(n - got)
            if not view:
                if got == 0:
                    return None
                raise EOFError(f"unexpected end of data ({got} of {n} bytes of a header)")
            parts.append(view)
            got += len(view)
        return b"".join(parts)

    def skip(self, n: int) -> None:
        while n:
            view = self.take(n)
            if not view:
                raise EOFError("unexpected end of data")
            n -= len(view)


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or GNU base-256 when the high bit is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _NotTar(f"bad number field {field!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf8", "surrogateescape")


class _NotTar(CorruptStreamError):
    """The bytes are not a tar header."""


def _header(block: bytes) -> tuple[str, int, int, bytes, str]:
    """(name, mode, size, typeflag, linkname) of a 512-byte ustar/GNU/v7 header."""
    stored = _number(block[148:156])
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    # Old writers summed the bytes as signed chars: each byte over 127 counts 256 less.
    signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:] if b > 127)
    if stored not in (unsigned, signed):
        raise _NotTar("header checksum mismatch")
    name = _text(block[0:100])
    if block[257:263] == b"ustar\0" and block[345] != 0:  # POSIX: prefix + name
        name = _text(block[345:500]) + "/" + name
    size = _number(block[124:136])
    if size < 0:
        raise _NotTar(f"negative member size {size}")
    return name, _number(block[100:108]), size, block[156:157], _text(block[157:257])


def _pax_records(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        try:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
        except ValueError:
            raise _NotTar("bad pax header") from None
        if length <= 0 or pos + length > len(data):
            raise _NotTar("bad pax header")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf8", "surrogateescape")] = value.decode("utf8", "surrogateescape")
        pos += length
    return records


_REGULAR = (b"0", b"\0", b"7")
_KINDS = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "device file",
    b"4": "device file",
    b"6": "FIFO",
    b"S": "sparse file",
}


def extract_tar_stream(
    fileobj: IO[bytes] | PipelinedStream,
    dest: Path,
    *,
    source: str,
    max_bytes: int | None = None,
    max_files: int | None = None,
) -> Manifest:
    """Unpacks the tar stream ``fileobj`` (plain, gzip, bzip2 or xz) into the existing empty
    directory ``dest``.

    Member data goes from the decompressor's chunks straight to disk, hashed on the way: no
    intermediate copies, one pass.

    Args:
        fileobj: a readable binary stream (an HTTP response body, an open file), or a
            :class:`PipelinedStream` already reading one.
        dest: the directory to fill.
        source: the handle or URL, for error messages.
        max_bytes: refuse a tar stream (everything decompression produces: headers,
            extension records, member data, padding) over this many bytes (default
            ``TFHUB_MAX_MODEL_BYTES``).
        max_files: refuse more members (files and directories) than this (default
            ``TFHUB_MAX_MODEL_FILES``).

    Returns:
        The manifest of the files written: relative path → size and sha256.

    Raises:
        ArchiveError: not a tar archive, truncated, or holding something other than plain
            files and directories inside the root.
        ArchiveTooLargeError: the stream exceeds ``max_bytes`` or ``max_files``.
    """
    limit = _Limits(
        source,
        config.max_model_bytes() if max_bytes is None else max_bytes,
        config.max_model_files() if max_files is None else max_files,
    )
    own = not isinstance(fileobj, PipelinedStream)
    stream = PipelinedStream(fileobj) if own else fileobj
    try:
        return _walk(_Chunks(stream.read_chunk), dest, source, limit)  # type: ignore[union-attr]
    except _READ_ERRORS as exc:
        raise ArchiveError(
            f"{source} does not appear to be a valid module: {exc}. The server must answer "
            "with a tar or tar.gz archive of the model directory.",
            handle=source,
        ) from exc
    finally:
        if own:
            stream.close()


class _Limits:
    """Counts what decompression produces, refusing it before it is read."""

    def __init__(self, source: str, max_bytes: int, max_files: int) -> None:
        self.source, self.max_bytes, self.max_files = source, max_bytes, max_files
        self.bytes = self.members = 0

    def take(self, n: int) -> None:
        """Accounts for ``n`` more bytes of the tar stream, about to be read."""
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise ArchiveTooLargeError(
                f"{self.source} unpacks to more than {self.max_bytes} bytes (headers and "
                "directory data included; TFHUB_MAX_MODEL_BYTES); raise the limit if this model "
                "is really that large.",
                handle=self.source,
            )

    def member(self) -> None:
        self.members += 1
        if self.members > self.max_files:
            raise ArchiveTooLargeError(
                f"{self.source} holds more than {self.max_files} files and directories "
                "(TFHUB_MAX_MODEL_FILES); raise the limit if this model really has that many.",
                handle=self.source,
            )


def _walk(chunks: _Chunks, dest: Path, source: str, limit: _Limits) -> Manifest:
    manifest: Manifest = {}
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        block = chunks.exactly(_BLOCK)
        if block is None:
            # Every tar writer ends with zero blocks: a stream cut at a member boundary must
            # not pass for a complete (smaller) model.
            raise EOFError("the archive ends without its end-of-archive marker (truncated)")
        limit.take(_BLOCK)
        if block == _ZERO_BLOCK:
            break
        raw_name, mode, size, kind, linkname = _header(block)
        padded = -(-size // _BLOCK) * _BLOCK
        if kind in (b"L", b"x", b"g", b"K"):
            if size > _MAX_META:
                raise ArchiveError(
                    f"{source} has an oversized tar extension header.", handle=source
                )
            limit.take(padded)
            data = chunks.exactly(padded) if padded else b""
            if data is None:
                raise EOFError("the archive ends inside an extension header")
            if kind == b"L":
                long_name = _text(data[:size])
            elif kind == b"x":
                pax = _pax_records(data[:size])
            continue  # global pax headers ("g") and GNU long link names change nothing we keep
        name = pax.get("path", long_name if long_name is not None else raw_name)
        if "size" in pax:
            if not pax["size"].isdigit():
                raise _NotTar(f"bad pax size {pax['size']!r}")
            size = int(pax["size"])
            padded = -(-size // _BLOCK) * _BLOCK
        if "\0" in name:
            raise _NotTar(f"NUL byte in the member name {name!r}")
        linkname = pax.get("linkpath", linkname)
        long_name, pax = None, {}
        rel = safe_member_path(name, source=source)
        limit.member()
        limit.take(padded)  # a directory's "data" too: it is decompressed all the same
        if kind == b"5":
            if rel is not None:
                _mkdir(dest / rel, name, source)
            chunks.skip(padded)
            continue
        if kind not in _REGULAR:
            what = _KINDS.get(kind, f"member of type {kind!r}")
            if what in ("hard link", "symbolic link"):
                what += f" to {linkname!r}"
            raise ArchiveError(
                f"{source} contains {name!r}, which is a {what}; model archives may hold only "
                "regular files and directories.",
                handle=source,
            )
        if rel is None:
            raise ArchiveError(f"{source} has a file as its root.", handle=source)
        if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
            raise ArchiveError(
                f"{source} contains {name!r} with setuid/setgid/sticky bits (mode {mode:o}); "
                "model files never need them.",
                handle=source,
            )
        if rel in manifest:
            raise ArchiveError(
                f"{source} contains {name!r} twice; refusing an ambiguous archive.",
                handle=source,
            )
        manifest[rel] = _write_member(chunks, size, dest / rel, name, source)
        chunks.skip(padded - size)
    if not manifest:
        raise ArchiveError(f"{source} is an empty archive.", handle=source)
    return manifest


def _conflict(name: str, source: str) -> ArchiveError:
    return ArchiveError(
        f"{source} contains {name!r}, which clashes with a file or directory of the same name "
        "earlier in the archive.",
        handle=source,
    )


def _mkdir(path: Path, name: str, source: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise _conflict(name, source) from exc


def _write_member(chunks: _Chunks, size: int, path: Path, name: str, source: str) -> FileRecord:
    _mkdir(path.parent, name, source)
    digest = hashlib.sha256()
    # O_EXCL: a member can never overwrite something already written (e.g. through a
    # directory created by an earlier member with the same normalized name).
    try:
        # 0o666 minus the umask: a group-shared cache (umask 002) stays writable by the group.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise _conflict(name, source) from exc
    try:
        remaining = size
        while remaining:
            view = chunks.take(remaining)
            if not view:
                raise ArchiveError(
                    f"{source} is truncated: {name!r} has {size - remaining} of {size} bytes.",
                    handle=source,
                )
            remaining -= len(view)
            digest.update(view)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return FileRecord(size, digest.hexdigest())
