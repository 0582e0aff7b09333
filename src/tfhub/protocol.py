"""Names and constants of the TF Hub hosting protocol, shared by our client and server.

A model handle ``https://host/<publisher>/<model>/<version>`` serves the model page to a
browser; the query parameter ``tf-hub-format`` asks for the model itself:

* ``compressed``: a tar (usually gzip-compressed) whose root is the model directory;
* ``uncompressed``: a ``303 See Other`` whose body is the storage location (``gs://...``).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from tfhub.errors import ArchiveError, ProtocolError

FORMAT_PARAM = "tf-hub-format"
COMPRESSED = "compressed"
UNCOMPRESSED = "uncompressed"

# The fast path between a tfhub client and a tfhub server. The client asks for the compressed
# format as usual and adds ``Accept: FILES_MEDIA_TYPE``; a server that has the model's files
# stored one by one answers with a JSON manifest instead of the tarball:
#   {"version": 1, "block_size": B, "files": [{"path", "size", "sha256", "url",
#    "blocks": [sha256 of each B-byte block, in order]}]}
# Each ``url`` (relative to the request URL) serves the file's bytes with Range support.
# Every other client sends no such Accept value and gets the tarball, unchanged.
FILES_MEDIA_TYPE = "application/vnd.tfhub.files+json"
FILES_MANIFEST_VERSION = 1
# What a tfhub client sends to ask for the fast path (the tarball is still acceptable).
ACCEPT_FILES = f"{FILES_MEDIA_TYPE}, */*;q=0.5"
# The sha256 of a blob or archive response, in hex (beside ``ETag`` and ``Digest``).
SHA256_HEADER = "X-Tfhub-Sha256"
# The blocks a file is hashed in for the fast path (the server writes 4 MiB; a client accepts
# any size in [MIN_BLOCK_SIZE, MAX_BLOCK_SIZE]).
BLOCK_SIZE = 4 << 20
MIN_BLOCK_SIZE = 64 << 10
MAX_BLOCK_SIZE = 1 << 30

# Files whose presence makes a directory a model (checked in this order).
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
TF1_MODULE_PB = "tfhub_module.pb"
MODEL_FILES = (SAVED_MODEL_PB, SAVED_MODEL_PBTXT, TF1_MODULE_PB)


def is_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a model at its root (one of :data:`MODEL_FILES`)."""
    return any(os.path.isfile(os.path.join(path, name)) for name in MODEL_FILES)


# Publisher ids and model names as the tfhub.dev docs format defines them.
# ASCII only (``\d`` and ``\w`` would accept other scripts' digits and letters); use fullmatch.
PUBLISHER_RE = re.compile(r"[a-z0-9][a-z0-9-]*", re.ASCII)
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", re.ASCII)
VERSION_RE = re.compile(r"[1-9][0-9]*", re.ASCII)


# --- block hashing: one definition for the server's publish, the client and the cache -------

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_READ = 1 << 20


def block_digest() -> Any:
    """A fresh hash object for one block (sha256); ``.update()`` it, then ``.hexdigest()``."""
    return hashlib.sha256()


def iter_block_hashes(f: IO[bytes], block_size: int = BLOCK_SIZE) -> Iterator[str]:
    """The hex digest of each ``block_size`` block of the open binary file ``f``, from its
    current position to its end (the last block may be shorter; an empty file has none)."""
    while True:
        digest = block_digest()
        left = block_size
        got = 0
        while left and (chunk := f.read(min(_READ, left))):
            digest.update(chunk)
            left -= len(chunk)
            got += len(chunk)
        if not got:
            return
        yield digest.hexdigest()
        if left:
            return


def block_count(size: int, block_size: int) -> int:
    """How many blocks a file of ``size`` bytes has."""
    return -(-size // block_size)


def safe_relative_path(name: str, *, source: str) -> str | None:
    """The normalized relative path of an archive member or manifest entry, or None for the
    root itself.

    Raises:
        ArchiveError: the name is absolute or escapes the model directory.
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


# --- the files manifest ----------------------------------------------------------------------


def _bad(field: str, why: str) -> ProtocolError:
    return ProtocolError(f"invalid files manifest: {field} {why}")


def _int(value: object, field: str, low: int, high: int | None = None) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise _bad(field, f"must be an integer {bound}, not {value!r:.80}")
    return value


def _hex(value: object, field: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise _bad(field, f"must be 64 lower-case hex digits, not {value!r:.80}")
    return value


@dataclass(frozen=True)
class FileEntry:
    """One file of a model in the fast path: where it goes, how big, its hashes, its URL
    (relative to the manifest's URL)."""

    path: str
    size: int
    sha256: str
    url: str
    blocks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "url": self.url,
            "blocks": list(self.blocks),
        }


@dataclass(frozen=True)
class FilesManifest:
    """The fast path's answer: a model's files, each with the sha256 of every block.

    Construction validates everything (types, sizes, hex digests, relative ``..``-free paths,
    block counts consistent with the sizes, no path twice, no file also a directory), so a
    manifest object is always well-formed, whether built by the server or parsed by a client.

    Raises:
        ProtocolError: a field is malformed (the message names it).
        ArchiveError: a path is absolute, escapes the model directory, repeats or clashes.
    """

    block_size: int
    files: tuple[FileEntry, ...]
    version: int = FILES_MANIFEST_VERSION

    def __post_init__(self) -> None:
        if self.version != FILES_MANIFEST_VERSION:
            raise _bad(
                "version", f"is {self.version!r:.40}; expected version {FILES_MANIFEST_VERSION}"
            )
        _int(self.block_size, "block_size", MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)
        if not self.files:
            raise _bad("files", "is empty (no files)")
        seen: set[str] = set()
        for i, f in enumerate(self.files):
            where = f"files[{i}]"
            if not isinstance(f.path, str) or not f.path:
                raise _bad(f"{where}.path", f"must be a non-empty string, not {f.path!r:.80}")
            rel = safe_relative_path(f.path, source="the files manifest")
            if rel != f.path:
                raise _bad(f"{where}.path", f"must be a normalized relative path: {f.path!r:.80}")
            _int(f.size, f"{where}.size", 0)
            _hex(f.sha256, f"{where}.sha256")
            if not isinstance(f.url, str) or not f.url:
                raise _bad(f"{where}.url", f"must be a non-empty string, not {f.url!r:.80}")
            if len(f.blocks) != block_count(f.size, self.block_size):
                raise _bad(
                    f"{where}.blocks",
                    f"(block hashes) has {len(f.blocks)} entries for {f.size} bytes in blocks "
                    f"of {self.block_size}",
                )
            for j, block in enumerate(f.blocks):
                _hex(block, f"{where}.blocks[{j}]")
            if rel in seen:
                raise ArchiveError(f"The files manifest lists {rel!r} twice.")
            seen.add(rel)
        for rel in seen:  # a file may not also be a directory of another file
            parent = rel.rpartition("/")[0]
            while parent:
                if parent in seen:
                    raise ArchiveError(
                        f"The files manifest lists {parent!r} both as a file and as a directory."
                    )
                parent = parent.rpartition("/")[0]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "block_size": self.block_size,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, doc: object) -> FilesManifest:
        """Checks a decoded JSON document (see the class doc for what is checked)."""
        if not isinstance(doc, dict):
            raise _bad("document", f"must be an object, not {type(doc).__name__}")
        version = doc.get("version")
        if version != FILES_MANIFEST_VERSION or type(version) is not int:
            raise _bad("version", f"is {version!r:.40}; expected version {FILES_MANIFEST_VERSION}")
        entries = doc.get("files")
        if not isinstance(entries, list):
            raise _bad("files", f"must be a list, not {type(entries).__name__}")
        files = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise _bad(f"files[{i}]", "must be an object")
            blocks = entry.get("blocks")
            if not isinstance(blocks, list):
                raise _bad(f"files[{i}].blocks", "(block hashes) must be a list")
            files.append(
                FileEntry(
                    entry.get("path"),  # type: ignore[arg-type]  # checked in __post_init__
                    entry.get("size"),  # type: ignore[arg-type]
                    entry.get("sha256"),  # type: ignore[arg-type]
                    entry.get("url"),  # type: ignore[arg-type]
                    tuple(blocks),
                )
            )
        return cls(doc.get("block_size"), tuple(files), version)  # type: ignore[arg-type]
