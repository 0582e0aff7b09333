"""Cache entries: where they live, their manifests, and the checks made before each use.

See :mod:`tfhub.handles.cache` for the layout and :mod:`tfhub.handles.cache.trust` for whose
files are used. An entry is used only if :func:`check_entry` finds nothing wrong: the entry is
a real directory (not a link) that the cache trusts; with a manifest, every file it lists is a
regular file (not a link) of the recorded size, owned by someone trusted; without one (an entry
written by ``tensorflow_hub``) it holds a model file and every variables shard its index names.
Anything else is treated as missing and downloaded again.

**Last use** is the modification time of ``<sha1>.descriptor.txt``: :func:`lookup` touches it
(one ``utimensat``, never following a link) on every cache hit, so no extra file is written and
``tensorflow_hub``, which never reads that time, is not affected. An entry without descriptor
reports its directory's modification time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfhub import config, protocol
from tfhub.handles.cache import trust

__all__ = [
    "DESCRIPTOR_SUFFIX",
    "LOCK_SUFFIX",
    "MANIFEST_SUFFIX",
    "PARTIAL_SUFFIX",
    "FileRecord",
    "Manifest",
    "bad_blocks",
    "check_entry",
    "entry_path",
    "lookup",
    "partial_path",
    "read_handle",
    "read_manifest",
    "sibling",
    "usable_problem",
    "verify_entry",
]

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
DESCRIPTOR_SUFFIX = ".descriptor.txt"
LOCK_SUFFIX = ".lock"
PARTIAL_SUFFIX = ".partial"
_SHARD_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<i>\d{5})-of-(?P<n>\d{5})$")


@dataclass(frozen=True)
class FileRecord:
    """One file of a cache entry: its size and sha256, or (files that came by the fast path)
    the sha256 of each ``block_size`` block, as verified while they were downloaded."""

    size: int
    sha256: str | None
    block_size: int | None = None
    blocks: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"size": self.size, "sha256": self.sha256}
        if self.blocks is not None:
            out.update(block_size=self.block_size, blocks=list(self.blocks))
        return out

    @classmethod
    def from_json(cls, rec: Any) -> FileRecord:
        blocks = rec.get("blocks")
        if blocks is None:
            return cls(int(rec["size"]), rec.get("sha256"))
        return cls(int(rec["size"]), rec.get("sha256"), int(rec["block_size"]), tuple(blocks))


Manifest = dict[str, FileRecord]


def entry_path(handle: str, cache_root: Path | None = None) -> Path:
    """``<cache>/<sha1(handle)>``: where ``handle`` is (or will be) cached."""
    root = cache_root if cache_root is not None else config.cache_dir()
    return root / hashlib.sha1(handle.encode("utf8")).hexdigest()


def sibling(entry: Path, suffix: str) -> Path:
    """``<entry><suffix>``, e.g. the manifest, descriptor or lock of ``entry``."""
    return entry.with_name(entry.name + suffix)


def partial_path(entry: Path) -> Path:
    """The staging directory of a resumable download of ``entry`` (kept across attempts)."""
    return sibling(entry, PARTIAL_SUFFIX)


def _read_json(path: Path, pol: trust.Policy) -> Any:
    raw = trust.read_nofollow(path, pol)
    return None if raw is None else json.loads(raw)


def read_manifest(entry: Path, pol: trust.Policy | None = None) -> Manifest | None:
    """The manifest tfhub wrote for ``entry``, or None (no manifest, unreadable, a link, or
    written by someone the cache does not trust)."""
    pol = pol or trust.policy(entry.parent)
    try:
        files = _read_json(sibling(entry, MANIFEST_SUFFIX), pol)["files"]
        return {rel: FileRecord.from_json(rec) for rel, rec in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def read_handle(entry: Path) -> str | None:
    """The handle ``entry`` caches, from its descriptor (``Module: <handle>``) or manifest."""
    pol = trust.policy(entry.parent)
    raw = trust.read_nofollow(sibling(entry, DESCRIPTOR_SUFFIX), pol, limit=64 << 10)
    first = (raw or b"").decode("utf8", "replace").partition("\n")[0]
    if first.startswith("Module: "):
        return first.removeprefix("Module: ").strip()
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        handle = (_read_json(sibling(entry, MANIFEST_SUFFIX), pol) or {}).get("handle")
        if isinstance(handle, str):
            return handle
    return None


def _structural_problem(entry: Path) -> str | None:
    """Checks an entry without manifest: a model file, and every variables shard present."""
    if not any(entry.iterdir()):
        return "the directory is empty"
    if not protocol.is_model_dir(entry):
        return "it holds no saved_model.pb, saved_model.pbtxt or tfhub_module.pb"
    variables = entry / "variables"
    if variables.is_dir():
        names = set(os.listdir(variables))
        shards = [m for m in map(_SHARD_RE.match, names) if m]
        if shards and not (variables / f"{shards[0]['prefix']}.index").is_file():
            return f"variables/{shards[0]['prefix']}.index is missing"
        for m in shards:
            for i in range(int(m["n"])):
                shard = f"{m['prefix']}.data-{i:05d}-of-{m['n']}"
                if shard not in names:
                    return f"variables/{shard} is missing"
        for name in names:
            if name.endswith(".index") and not any(
                s["prefix"] == name[: -len(".index")] for s in shards
            ):
                return f"variables/{name} has no data shards"
    return None


def _untrusted(what: str, st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return f"{what} is a symbolic link"
    if st.st_mode & stat.S_IWOTH:
        return f"{what} is world-writable"
    return f"{what} belongs to {trust.owner_name(st)}, whom this cache does not trust"


def check_entry(entry: Path) -> str | None:
    """Why ``entry`` cannot be used, or None when it is complete.

    This is the cheap check done on every cache hit: one ``lstat`` per file.
    """
    pol = trust.policy(entry.parent)
    st = trust.lstat(entry)
    if st is None:
        return "it does not exist"
    if not trust.trusted(st, pol):
        return _untrusted("the entry", st)
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    manifest_st = trust.lstat(sibling(entry, MANIFEST_SUFFIX))
    if manifest_st is not None and not trust.trusted(manifest_st, pol):
        return _untrusted("its manifest", manifest_st)
    manifest = read_manifest(entry, pol)
    if manifest is None:
        try:
            return _structural_problem(entry)
        except OSError as exc:
            return f"it cannot be read ({exc.strerror})"
    for rel, record in manifest.items():
        try:
            file_st = os.lstat(entry / rel)
        except OSError:
            return f"{rel} is missing"
        if not stat.S_ISREG(file_st.st_mode) or not trust.trusted(file_st, pol):
            return _untrusted(rel, file_st)
        if file_st.st_size != record.size:
            return f"{rel} has {file_st.st_size} bytes instead of {record.size}"
    return None


def verify_entry(entry: Path) -> list[str]:
    """Re-hashes every file of ``entry`` against its manifest; returns the problems found."""
    problem = check_entry(entry)
    manifest = read_manifest(entry)
    if problem is not None or manifest is None:
        return [problem] if problem else []
    problems = []
    for rel, record in manifest.items():
        path = entry / rel
        try:
            if record.sha256:
                digest = _sha256_file(path)
                if digest != record.sha256:
                    problems.append(f"{rel} has sha256 {digest}, expected {record.sha256}")
            elif record.blocks is not None and record.block_size:
                bad = bad_blocks(path, record.block_size, record.blocks)
                if bad:
                    problems.append(
                        f"{rel} has {len(bad)} altered block(s), the first at byte "
                        f"{bad[0] * record.block_size}"
                    )
        except OSError:
            problems.append(f"{rel} is missing")
    return problems


def _open_regular(path: str | os.PathLike[str]) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(f"{path} is not a regular file")
    return fd


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(_open_regular(path), "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def bad_blocks(path: str | os.PathLike[str], block_size: int, blocks: tuple[str, ...]) -> list[int]:
    """Indexes of the ``block_size`` blocks of ``path`` whose sha256 is not the expected one
    (a short file fails its missing blocks)."""
    bad = []
    with open(_open_regular(path), "rb") as f:
        got = protocol.iter_block_hashes(f, block_size)
        for index, expected in enumerate(blocks):
            if next(got, None) != expected:
                bad.append(index)
    return bad


def usable_problem(entry: Path) -> str | None:
    """:func:`check_entry`, plus the sha256 check when ``TFHUB_VERIFY_CACHE`` is set."""
    problem = check_entry(entry)
    if problem is None and config.verify_cache():
        problem = "; ".join(verify_entry(entry)) or None
    return problem


def lookup(handle: str, cache_root: Path | None = None) -> Path | None:
    """The complete cache entry of ``handle``, or None. Never takes a lock; records the use
    (see the module docstring)."""
    entry = entry_path(handle, cache_root)
    problem = usable_problem(entry)
    if problem is None:
        with contextlib.suppress(OSError):  # a descriptor we may not touch: no record
            os.utime(sibling(entry, DESCRIPTOR_SUFFIX), follow_symlinks=False)
        return entry
    if os.path.lexists(entry):
        logger.info("Not using the cache entry %s of %s: %s.", entry, handle, problem)
    return None
