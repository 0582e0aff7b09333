"""Safe streaming extraction of model archives.

Every archive is treated as hostile: only regular files and directories are written, member
names must stay inside the destination (no ``..``, no absolute paths), duplicate members are
refused, and the unpacked size is bounded by ``TFHUB_MAX_MODEL_BYTES``. The archive is read
as a stream (``r|*``: plain tar, gzip, bz2 or xz), never stored whole.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
import zlib
from pathlib import Path
from typing import IO

from tfhub import config
from tfhub.errors import ArchiveError, ArchiveTooLargeError
from tfhub.handles.cache import FileRecord, Manifest
from tfhub.handles.transfer import inflate_module

__all__ = ["extract_tar_stream", "safe_member_path"]

_CHUNK = 1 << 20
# What a corrupt or truncated archive raises while being read.
_READ_ERRORS: tuple[type[Exception], ...] = (
    tarfile.ReadError,
    tarfile.CompressionError,
    EOFError,
    zlib.error,
    inflate_module().error,
)


def safe_member_path(name: str, *, source: str) -> str | None:
    """The normalized relative path of a tar member, or None for the root itself.

    Raises:
        ArchiveError: the name is absolute or escapes the archive root.
    """
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(
            f"{source} contains the absolute path {name!r}; model archives must hold relative "
            "paths only.",
            handle=source,
        )
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm in (".", ""):
        return None
    if norm == ".." or norm.startswith("../"):
        raise ArchiveError(
            f"{source} contains the path {name!r}, which points outside the model directory.",
            handle=source,
        )
    return norm


def extract_tar_stream(
    fileobj: IO[bytes],
    dest: Path,
    *,
    source: str,
    max_bytes: int | None = None,
) -> Manifest:
    """Unpacks the tar stream ``fileobj`` into the existing empty directory ``dest``.

    Args:
        fileobj: a readable binary stream (an HTTP response body, an open file).
        dest: the directory to fill.
        source: the handle or URL, for error messages.
        max_bytes: refuse more unpacked bytes than this (default ``TFHUB_MAX_MODEL_BYTES``).

    Returns:
        The manifest of the files written: relative path → size and sha256.

    Raises:
        ArchiveError: not a tar archive, truncated, or holding something other than plain
            files and directories inside the root.
        ArchiveTooLargeError: the unpacked content exceeds ``max_bytes``.
    """
    limit = config.max_model_bytes() if max_bytes is None else max_bytes
    manifest: Manifest = {}
    total = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*", bufsize=_CHUNK) as tar:
            for member in tar:
                rel = safe_member_path(member.name, source=source)
                if member.isdir():
                    if rel is not None:
                        _mkdir(dest / rel, member.name, source)
                    continue
                if not member.isreg():
                    raise ArchiveError(
                        f"{source} contains {member.name!r}, which is a "
                        f"{_kind(member)}; model archives may hold only regular files and "
                        "directories.",
                        handle=source,
                    )
                if rel is None:
                    raise ArchiveError(f"{source} has a file as its root.", handle=source)
                if member.mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
                    raise ArchiveError(
                        f"{source} contains {member.name!r} with setuid/setgid/sticky bits "
                        f"(mode {member.mode:o}); model files never need them.",
                        handle=source,
                    )
                if rel in manifest:
                    raise ArchiveError(
                        f"{source} contains {member.name!r} twice; refusing an ambiguous archive.",
                        handle=source,
                    )
                total += member.size
                if total > limit:
                    raise ArchiveTooLargeError(
                        f"{source} unpacks to more than {limit} bytes (TFHUB_MAX_MODEL_BYTES); "
                        "raise the limit if this model is really that large.",
                        handle=source,
                    )
                manifest[rel] = _write_member(tar, member, dest / rel, source)
    except _READ_ERRORS as exc:
        raise ArchiveError(
            f"{source} does not appear to be a valid module: {exc}. The server must answer "
            "with a tar or tar.gz archive of the model directory.",
            handle=source,
        ) from exc
    except tarfile.StreamError as exc:
        raise ArchiveError(f"{source}: unexpected archive layout ({exc}).", handle=source) from exc
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


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    return f"member of type {member.type!r}"


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, source: str
) -> FileRecord:
    src = tar.extractfile(member)
    if src is None:  # pragma: no cover - isreg() members always have data
        raise ArchiveError(f"{source}: cannot read {member.name!r}.", handle=source)
    _mkdir(path.parent, member.name, source)
    digest = hashlib.sha256()
    written = 0
    # O_EXCL: a member can never overwrite something already written (e.g. through a
    # directory created by an earlier member with the same normalized name).
    try:
        # 0o666 minus the umask: a group-shared cache (umask 002) stays writable by the group.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise _conflict(member.name, source) from exc
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            written += len(chunk)
    if written != member.size:
        raise ArchiveError(
            f"{source} is truncated: {member.name!r} has {written} of {member.size} bytes.",
            handle=source,
        )
    return FileRecord(written, digest.hexdigest())
