"""The fast path from a tfhub server: the model's files, in parallel, verified, resumable.

A tfhub server that stores a model's files one by one answers a request carrying
``Accept: application/vnd.tfhub.files+json`` with a manifest (see :mod:`tfhub.protocol`)
instead of the tarball. The files are then fetched with HTTP range requests on
``TFHUB_DOWNLOAD_WORKERS`` connections, written straight into place with ``pwrite`` (nothing
to decompress, nothing to unpack), and every block is checked against the manifest's sha256
as it streams by: a block that does not match refuses the install.

Downloads resume: the files are assembled in ``<entry>.partial/`` beside the cache entry
(under the entry's lock). When a transfer breaks, the request starts again from the first
unverified block; when the process dies, the next attempt re-hashes the blocks already on
disk and fetches only the missing or damaged ones.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tfhub import config, protocol
from tfhub.errors import ArchiveError, ArchiveTooLargeError, DownloadError, ProtocolError
from tfhub.handles.archive import safe_member_path
from tfhub.handles.cache import FileRecord, Manifest, bad_blocks

__all__ = ["RemoteFile", "download_files", "parse_files_manifest"]

logger = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_READ = 1 << 20
_MIN_BLOCK, _MAX_BLOCK = 64 << 10, 1 << 30
# In the partial directory: which files it holds blocks of, and (under files/) the files.
_STATE = "remote.json"
_FILES = "files"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model on the server."""

    path: str
    size: int
    sha256: str
    url: str
    blocks: tuple[str, ...]


def parse_files_manifest(data: bytes, *, handle: str, url: str) -> tuple[int, list[RemoteFile]]:
    """Checks a files manifest and returns ``(block_size, files)`` with absolute URLs.

    Raises:
        ProtocolError: the manifest is malformed.
        ArchiveError: it names a path outside the model directory, or twice.
        ArchiveTooLargeError: the files add up to more than ``TFHUB_MAX_MODEL_BYTES``.
    """

    def bad(why: str) -> ProtocolError:
        return ProtocolError(
            f"{url} answered with an invalid files manifest ({why}); set TFHUB_FAST_PATH=0 to "
            "download the tarball instead, and report this to the server's operator.",
            handle=handle,
            url=url,
        )

    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != protocol.FILES_MANIFEST_VERSION:
        raise bad(f"expected an object with version {protocol.FILES_MANIFEST_VERSION}")
    block_size = doc.get("block_size")
    if type(block_size) is not int or not _MIN_BLOCK <= block_size <= _MAX_BLOCK:
        raise bad(f"block_size {block_size!r}")
    entries = doc.get("files")
    if not isinstance(entries, list) or not entries:
        raise bad("no files")
    files: list[RemoteFile] = []
    seen: set[str] = set()
    total = 0
    limit = config.max_model_bytes()
    for entry in entries:
        if not isinstance(entry, dict):
            raise bad("a file entry is not an object")
        path, size, sha, link, blocks = (
            entry.get(k) for k in ("path", "size", "sha256", "url", "blocks")
        )
        if not isinstance(path, str) or not isinstance(link, str):
            raise bad(f"file entry {entry!r:.200}")
        rel = safe_member_path(path, source=handle)
        if rel is None:
            raise bad(f"the path {path!r} names the model directory itself")
        if type(size) is not int or size < 0:
            raise bad(f"size of {rel!r}")
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise bad(f"sha256 of {rel!r}")
        if (
            not isinstance(blocks, list)
            or len(blocks) != -(-size // block_size)
            or not all(isinstance(b, str) and _HEX64.match(b) for b in blocks)
        ):
            raise bad(f"block hashes of {rel!r}")
        if rel in seen:
            raise ArchiveError(f"{handle} lists {rel!r} twice.", handle=handle)
        seen.add(rel)
        absolute = urllib.parse.urljoin(url, link)
        if urllib.parse.urlsplit(absolute).scheme not in ("http", "https"):
            raise bad(f"the URL of {rel!r} is not http(s)")
        total += size
        if total > limit:
            raise ArchiveTooLargeError(
                f"{handle} holds more than {limit} bytes (TFHUB_MAX_MODEL_BYTES); raise the "
                "limit if this model is really that large.",
                handle=handle,
            )
        files.append(RemoteFile(rel, size, sha, absolute, tuple(blocks)))
    for rel in seen:  # a file may not also be a directory of another file
        parent = rel.rpartition("/")[0]
        while parent:
            if parent in seen:
                raise ArchiveError(
                    f"{handle} lists {parent!r} both as a file and as a directory.", handle=handle
                )
            parent = parent.rpartition("/")[0]
    return block_size, files


@dataclass
class _Run:
    """Blocks ``first``..``last`` (inclusive) of one file, fetched by one request."""

    file: RemoteFile
    first: int
    last: int


def download_files(
    handle: str,
    block_size: int,
    files: list[RemoteFile],
    dest: Path,
    partial: Path,
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> Manifest:
    """Fetches ``files`` into ``dest`` through the resumable staging directory ``partial``.

    Returns:
        The manifest of what was written (every block verified).

    Raises:
        ProtocolError: a block's sha256 differs from the manifest (nothing is installed), or
            the server ignored a range request.
        DownloadError: the network failed after the retries.
    """
    _prepare_partial(partial, files)
    runs: list[_Run] = []
    for f in files:
        target = partial / _FILES / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        existing = target.stat().st_size if target.exists() else None
        if existing != f.size:
            _allocate(target, f.size)
        # A resumed file keeps the blocks that already match.
        missing = set(bad_blocks(target, block_size, f.blocks)) if existing == f.size else None
        runs.extend(_split_runs(f, missing))
    _fetch_all(handle, block_size, runs, partial, on_bytes)
    manifest: Manifest = {}
    for f in files:
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial / _FILES / f.path, target)
        # What was verified is recorded: the block hashes (the file's sha256 in the manifest
        # was not recomputed; `tfhub cache verify` checks the blocks).
        manifest[f.path] = FileRecord(f.size, None, block_size, f.blocks)
    shutil.rmtree(partial, ignore_errors=True)
    return manifest


def _allocate(path: Path, size: int) -> None:
    """Creates ``path`` with ``size`` bytes reserved on disk (a full disk fails here, before
    any download), keeping whatever blocks it already holds."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        os.ftruncate(fd, size)
        if size:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                # Not every file system can reserve space; the writes will allocate it.
    finally:
        os.close(fd)


def _prepare_partial(partial: Path, files: list[RemoteFile]) -> None:
    """Keeps ``partial`` only if it holds blocks of these very files; empties it otherwise."""
    wanted = json.dumps(sorted([f.path, f.sha256] for f in files))
    state = partial / _STATE
    with contextlib.suppress(OSError):
        if state.read_text("utf8") == wanted:
            logger.info("Resuming the download in %s", partial)
            return
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    state.write_text(wanted, "utf8")


def _split_runs(f: RemoteFile, missing: set[int] | None) -> list[_Run]:
    """The blocks to fetch (all, or the ``missing`` ones of a resumed file), consecutive ones
    in requests of at most ``_RUN_BLOCKS`` blocks (so that several connections share a large
    file)."""
    runs: list[_Run] = []
    for index in range(len(f.blocks)):
        if missing is not None and index not in missing:
            continue
        last = runs[-1] if runs else None
        if last is not None and index == last.last + 1 and last.last - last.first + 1 < _RUN_BLOCKS:
            last.last = index
        else:
            runs.append(_Run(f, index, index))
    return runs


# 8 blocks of 4 MiB: big enough that a request costs little, small enough that a 400 MB file
# keeps every connection busy.
_RUN_BLOCKS = 8


def _fetch_all(
    handle: str,
    block_size: int,
    runs: list[_Run],
    partial: Path,
    on_bytes: Callable[[int], None] | None,
) -> None:
    if not runs:
        return
    stop = threading.Event()
    local = threading.local()
    sessions: list[requests.Session] = []
    sessions_lock = threading.Lock()

    def worker_session() -> requests.Session:
        sess: requests.Session | None = getattr(local, "session", None)
        if sess is None:
            from tfhub.handles.http import session

            sess = local.session = session()
            with sessions_lock:
                sessions.append(sess)
        return sess

    def work(run: _Run) -> None:
        _fetch_run(handle, block_size, run, partial, worker_session(), stop, on_bytes)

    workers = min(config.download_workers(), len(runs))
    # Larger files first, so that the tail of the download is made of small requests.
    runs.sort(key=lambda r: -(r.last - r.first + 1) * block_size)
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tfhub-fetch")
    try:
        futures = [pool.submit(work, run) for run in runs]
        for future in concurrent.futures.as_completed(futures):
            error = future.exception()
            if error is not None:
                stop.set()
                raise error
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for sess in sessions:
            sess.close()


def _fetch_run(
    handle: str,
    block_size: int,
    run: _Run,
    partial: Path,
    sess: requests.Session,
    stop: threading.Event,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Fetches and verifies one run of blocks; a broken transfer resumes at the first
    unverified block."""
    from tfhub.handles.http import BROKEN_TRANSFER, backoff, get

    f = run.file
    attempt = 0
    fd = os.open(partial / _FILES / f.path, os.O_WRONLY)
    try:
        while run.first <= run.last:
            start = run.first * block_size
            end = min((run.last + 1) * block_size, f.size) - 1
            before = run.first
            try:
                with get(
                    f.url, handle=handle, headers={"Range": f"bytes={start}-{end}"}, sess=sess
                ) as resp:
                    _check_range(resp, handle, f, start, end)
                    resp.raw.decode_content = True
                    _stream_blocks(resp, fd, run, block_size, handle, stop, on_bytes)
            except DownloadError:
                raise  # already retried by get(), or a checksum/protocol failure
            except BROKEN_TRANSFER as exc:
                if stop.is_set():
                    return
                if run.first > before:
                    attempt = 0  # it made progress: only consecutive failures count
                if attempt >= config.http_retries():
                    raise DownloadError(
                        f"The download of {f.path} of {handle} from {f.url} broke off: {exc}. "
                        "Check the network and try again: the blocks already verified are kept.",
                        handle=handle,
                        url=f.url,
                    ) from exc
                attempt += 1
                logger.info("Resuming %s at block %d after %s", f.url, run.first, exc)
                time.sleep(backoff(attempt, None))
            if stop.is_set():
                return
    finally:
        os.close(fd)


def _check_range(resp: Any, handle: str, f: RemoteFile, start: int, end: int) -> None:
    whole = start == 0 and end == f.size - 1
    if resp.status_code == 206:
        expected = f"bytes {start}-{end}/{f.size}"
        if resp.headers.get("Content-Range", "").strip() == expected:
            return
    elif resp.status_code == 200 and whole:
        return
    raise ProtocolError(
        f"{f.url} answered a request for bytes {start}-{end} of {f.path} with status "
        f"{resp.status_code} and Content-Range {resp.headers.get('Content-Range')!r}; the server "
        "must support range requests for the fast path (set TFHUB_FAST_PATH=0 to avoid it).",
        handle=handle,
        url=f.url,
        status=resp.status_code,
    )


def _stream_blocks(
    resp: Any,
    fd: int,
    run: _Run,
    block_size: int,
    handle: str,
    stop: threading.Event,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Writes the blocks of ``run`` from ``resp`` at their offsets, checking each one's
    sha256 as it completes and advancing ``run.first`` past it (so that a retry resumes
    there)."""
    f = run.file
    index = run.first
    offset = index * block_size
    block_end = min(offset + block_size, f.size)
    digest = hashlib.sha256()
    raw = resp.raw
    while index <= run.last:
        if stop.is_set():
            return
        chunk = raw.read(min(_READ, block_end - offset))
        if not chunk:
            raise requests.exceptions.ChunkedEncodingError(
                f"the body of {f.url} ended at byte {offset} of {f.path}"
            )
        view = memoryview(chunk)
        digest.update(view)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written
        if on_bytes is not None:
            on_bytes(len(chunk))
        if offset == block_end:
            actual = digest.hexdigest()
            if actual != f.blocks[index]:
                raise ProtocolError(
                    f"Block {index} of {f.path} from {f.url} has sha256 {actual}, but the "
                    f"server's manifest says {f.blocks[index]}: the data is corrupt or was "
                    f"tampered with on the way, so {f.path} is not installed. Try again later, "
                    "and tell the server's operator if it persists.",
                    handle=handle,
                    url=f.url,
                )
            index += 1
            run.first = index
            block_end = min(offset + block_size, f.size)
            digest = hashlib.sha256()
