"""The fast path from a tfhub server: the model's files, in parallel, verified, resumable.

A tfhub server that stores a model's files one by one answers a request carrying
``Accept: application/vnd.tfhub.files+json`` with a manifest (:class:`tfhub.protocol.
FilesManifest`) instead of the tarball. The files are then fetched with HTTP range requests on
``TFHUB_DOWNLOAD_WORKERS`` connections from the manifest's own origin (scheme, host and port:
a manifest cannot send the client anywhere else), written straight into place with ``pwrite``
(nothing to decompress, nothing to unpack), and every block is checked against the manifest's
sha256 as it streams by: a block that does not match refuses the install.

Redirects of a file's request (a hub on S3: a presigned URL) are followed under the rule of
:mod:`tfhub.handles.redirects` (no credentials off the hub's origin; blocks still verified).

Downloads resume: the files are assembled in ``<entry>.partial/`` beside the cache entry
(private to its owner, 0700, under the entry's lock; files opened without following links).
Nothing is reserved on disk ahead of the data (files are sparse until written). When a
transfer breaks, the request starts again from the first unverified block; when the process
dies, the next attempt re-hashes the blocks already on disk and fetches only the missing or
damaged ones. A failure that retrying cannot fix (the server refuses, a block is corrupt)
removes ``.partial/``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import stat
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tfhub import config, protocol, transport
from tfhub.errors import (
    ArchiveError,
    ArchiveTooLargeError,
    CacheError,
    DownloadError,
    HubError,
    ProtocolError,
)
from tfhub.handles import credentials
from tfhub.handles.cache import FileRecord, Manifest, bad_blocks
from tfhub.handles.redirects import MAX_REDIRECTS, open_range, origin
from tfhub.progress import byte_bar
from tfhub.protocol import FileEntry, FilesManifest
from tfhub.transport import BROKEN_TRANSFER, Retry, TransferGuard

__all__ = ["download_files", "fetch_manifest", "parse_files_manifest"]

logger = logging.getLogger(__name__)

# At most this much per socket read: measured on 400 MB through nginx, 256 KiB beats 1 MiB
# (0.55 vs 1.03 s, less system time) and 4 MiB (each read allocates its buffer anew).
_READ = 256 << 10
# In the partial directory: which files it holds blocks of, and (under files/) the files.
_STATE = "remote.json"
_FILES = "files"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def parse_files_manifest(data: bytes, *, handle: str, url: str) -> FilesManifest:
    """Checks a files manifest fetched from ``url`` and returns it with absolute file URLs,
    each on the same origin as ``url``.

    Raises:
        ProtocolError: the manifest is malformed, or a file URL is on another origin.
        ArchiveError: it names a path outside the model directory, or twice.
        ArchiveTooLargeError: the files add up to more than ``TFHUB_MAX_MODEL_BYTES``, or are
            more than ``TFHUB_MAX_MODEL_FILES``.
    """

    def bad(why: object) -> ProtocolError:
        return ProtocolError(
            f"{url} answered with an invalid files manifest ({why}); set TFHUB_FAST_PATH=0 to "
            "download the tarball instead, and report this to the server's operator.",
            handle=handle,
            url=url,
        )

    try:
        manifest = FilesManifest.from_json(json.loads(data))
    except ValueError as exc:
        if isinstance(exc, ProtocolError):
            raise bad(exc) from None
        raise bad(f"not JSON: {exc}") from None
    except ArchiveError as exc:
        raise ArchiveError(f"{handle}: {exc}", handle=handle) from None
    limit, max_files = config.max_model_bytes(), config.max_model_files()
    if len(manifest.files) > max_files:
        raise ArchiveTooLargeError(
            f"{handle} holds more than {max_files} files (TFHUB_MAX_MODEL_FILES); raise the "
            "limit if this model really has that many.",
            handle=handle,
        )
    if manifest.total_size > limit:
        raise ArchiveTooLargeError(
            f"{handle} holds more than {limit} bytes (TFHUB_MAX_MODEL_BYTES); raise the "
            "limit if this model is really that large.",
            handle=handle,
        )
    home = origin(url)
    files = []
    for f in manifest.files:
        absolute = urllib.parse.urljoin(url, f.url)
        try:
            where = origin(absolute)
        except ValueError:
            raise bad(f"the URL of {f.path!r} has an invalid port") from None
        if where[0] not in ("http", "https"):
            raise bad(f"the URL of {f.path!r} is not http(s)")
        if where != home:
            raise bad(
                f"the URL of {f.path!r} is on {where[0]}://{where[1]}:{where[2]}, not on the "
                f"manifest's origin {home[0]}://{home[1]}:{home[2]}"
            )
        files.append(FileEntry(f.path, f.size, f.sha256, absolute, f.blocks))
    return FilesManifest(manifest.block_size, tuple(files))


def fetch_manifest(
    handle: str, data: bytes, url: str, dest: Path, partial: Path, guard: TransferGuard
) -> Manifest:
    """Parses the manifest ``data`` fetched from ``url`` and downloads its files into
    ``dest`` (see :func:`download_files`), with a progress bar."""
    manifest = parse_files_manifest(data, handle=handle, url=url)
    bar = byte_bar(f"Downloading {handle}", manifest.total_size)
    try:
        return download_files(
            handle, manifest, dest, partial, guard=guard, on_bytes=bar.update if bar else None
        )
    finally:
        if bar is not None:
            bar.close()


@dataclass
class _Run:
    """Blocks ``first``..``last`` (inclusive) of one file, fetched by one request."""

    file: FileEntry
    first: int
    last: int


def download_files(
    handle: str,
    manifest: FilesManifest,
    dest: Path,
    partial: Path,
    *,
    guard: TransferGuard | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Manifest:
    """Fetches the files of ``manifest`` into ``dest`` through the resumable staging
    directory ``partial``.

    Returns:
        The manifest of what was written (every block verified).

    Raises:
        ProtocolError: a block's sha256 differs from the manifest (nothing is installed), or
            the server ignored a range request.
        DownloadError: the network failed after the retries.
        CacheError: ``partial`` is a link, or belongs to another user.
    """
    guard = guard or TransferGuard(handle, handle)
    block_size = manifest.block_size
    _prepare_partial(partial, manifest.files)
    try:
        runs: list[_Run] = []
        for f in manifest.files:
            runs.extend(_split_runs(f, _missing_blocks(partial / _FILES / f.path, f, block_size)))
        _fetch_all(handle, block_size, runs, partial, guard, on_bytes)
        result: Manifest = {}
        for f in manifest.files:
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial / _FILES / f.path, target)
            # What was verified is recorded: the block hashes (the file's sha256 in the
            # manifest was not recomputed; `tfhub cache verify` checks the blocks).
            result[f.path] = FileRecord(f.size, None, block_size, f.blocks)
    except BaseException as exc:
        if not transport.is_transient(exc):
            shutil.rmtree(partial, ignore_errors=True)  # nothing worth resuming
        raise
    shutil.rmtree(partial, ignore_errors=True)
    return result


def _missing_blocks(target: Path, f: FileEntry, block_size: int) -> set[int] | None:
    """Creates ``target`` (sparse: no disk is reserved ahead of the data) unless it holds
    blocks of ``f`` already; returns the indexes of its blocks that still need fetching
    (None: all of them)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_nofollow(target, os.O_RDWR | os.O_CREAT)
    try:
        if os.fstat(fd).st_size == f.size:  # a resumed file keeps the blocks that match
            return set(bad_blocks(target, block_size, f.blocks))
        os.ftruncate(fd, f.size)
        return None
    finally:
        os.close(fd)


def _open_nofollow(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | _NOFOLLOW, 0o666)
    except OSError as exc:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise CacheError(
                f"{path} is a symbolic link; tfhub never writes through links in its cache. "
                "Remove it and try again.",
            ) from exc
        raise


def _owner(uid: int) -> str:
    try:
        import pwd  # POSIX only

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _private_dir(partial: Path) -> bool:
    """Makes sure ``partial`` is a directory of ours, private (0700); returns whether it
    already existed and can be trusted to hold our blocks.

    Raises:
        CacheError: it is a link, not a directory, or another user's.
    """
    try:
        st = os.lstat(partial)
    except FileNotFoundError:
        os.mkdir(partial, 0o700)
        return False
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise CacheError(
            f"{partial} is {kind} (owner {_owner(st.st_uid)}); tfhub keeps partial downloads "
            "only in private directories of its own. Remove it and try again."
        )
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise CacheError(
            f"{partial} belongs to {_owner(st.st_uid)}, not to you: another user's partial "
            "download is never trusted or written into. Ask them (or an administrator) to "
            "remove it, or set TFHUB_CACHE_DIR to a cache of your own."
        )
    if st.st_mode & 0o077:  # others could have written into it: start afresh, privately
        shutil.rmtree(partial)
        os.mkdir(partial, 0o700)
        return False
    return True


def _prepare_partial(partial: Path, files: tuple[FileEntry, ...]) -> None:
    """Keeps ``partial`` only if it holds blocks of these very files; empties it otherwise."""
    wanted = json.dumps(sorted([f.path, f.sha256] for f in files))
    state = partial / _STATE
    if _private_dir(partial):
        with contextlib.suppress(OSError):
            fd = os.open(state, os.O_RDONLY | _NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                if fh.read(len(wanted) + 1) == wanted.encode():
                    logger.info("Resuming the download in %s", partial)
                    return
        shutil.rmtree(partial)
        os.mkdir(partial, 0o700)
    fd = _open_nofollow(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        fh.write(wanted.encode())


def _split_runs(f: FileEntry, missing: set[int] | None) -> list[_Run]:
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
    guard: TransferGuard,
    on_bytes: Callable[[int], None] | None,
) -> None:
    if not runs:
        return
    stop = threading.Event()
    local = threading.local()
    sessions: list[requests.Session] = []
    sessions_lock = threading.Lock()

    def worker_session(kind: str) -> requests.Session:
        """The worker's session for the hub (``hub``) or for redirect targets (``plain``:
        never carries the hub's credentials)."""
        sess: requests.Session | None = getattr(local, kind, None)
        if sess is None:
            sess = transport.session()
            if kind == "plain":  # a redirect target off the hub: none of the hub's credentials
                sess.auth = None
                sess.headers.pop("Authorization", None)
                sess.cookies.clear()
            else:
                sess = credentials.attach(sess)
            setattr(local, kind, sess)
            with sessions_lock:
                sessions.append(sess)
        return sess

    def work(run: _Run) -> None:
        _fetch_run(handle, block_size, run, partial, worker_session, stop, guard, on_bytes)

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
    sessions: Callable[[str], requests.Session],
    stop: threading.Event,
    guard: TransferGuard,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Fetches and verifies one run of blocks; a broken transfer resumes at the first
    unverified block. One retry budget per run, renewed whenever a block was verified (only
    consecutive failures count; the guard bounds the whole download)."""
    f = run.file
    policy = Retry.from_config()
    retry = policy
    fd = _open_nofollow(partial / _FILES / f.path, os.O_WRONLY)
    try:
        while run.first <= run.last and not stop.is_set():
            start = run.first * block_size
            end = min((run.last + 1) * block_size, f.size) - 1
            before = run.first
            try:
                resp, retry = open_range(
                    handle, f.path, f.url, (start, end), sessions, retry=retry, guard=guard
                )
                with resp:
                    _check_range(resp, handle, f, start, end)
                    resp.raw.decode_content = True
                    _stream_blocks(resp, fd, run, block_size, handle, stop, guard, on_bytes)
            except HubError:
                raise  # already retried, or a checksum/protocol failure, or too slow
            except BROKEN_TRANSFER as exc:
                if stop.is_set():
                    return
                if run.first > before:
                    retry = policy  # it made progress: only consecutive failures count
                if retry.exhausted:
                    raise DownloadError(
                        f"The download of {f.path} of {handle} from {f.url} broke off: {exc}. "
                        "Check the network and try again: the blocks already verified are kept.",
                        handle=handle,
                        url=f.url,
                    ) from exc
                logger.info("Resuming %s at block %d after %s", f.url, run.first, exc)
                retry.sleep(None, guard)
                retry = retry.increment()
    finally:
        os.close(fd)


def _check_range(resp: Any, handle: str, f: FileEntry, start: int, end: int) -> None:
    whole = start == 0 and end == f.size - 1
    if resp.status_code == 206:
        expected = f"bytes {start}-{end}/{f.size}"
        if resp.headers.get("Content-Range", "").strip() == expected:
            return
    elif resp.status_code == 200 and whole:
        return
    if 300 <= resp.status_code < 400:
        why = (
            f"redirected to {resp.headers.get('Location')!r} after {MAX_REDIRECTS} redirects "
            "already; the fast path follows no more"
        )
    else:
        why = "the server must support range requests for the fast path"
    raise ProtocolError(
        f"{f.url} answered a request for bytes {start}-{end} of {f.path} with status "
        f"{resp.status_code} and Content-Range {resp.headers.get('Content-Range')!r}; {why} "
        "(set TFHUB_FAST_PATH=0 to avoid it).",
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
    guard: TransferGuard,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Writes the blocks of ``run`` from ``resp`` at their offsets, checking each one's
    hash as it completes and advancing ``run.first`` past it (so that a retry resumes
    there)."""
    f = run.file
    index = run.first
    offset = index * block_size
    block_end = min(offset + block_size, f.size)
    digest = protocol.block_digest()
    raw = resp.raw
    while index <= run.last:
        if stop.is_set():
            return
        chunk = transport.read_some(raw, min(_READ, block_end - offset), guard)
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
            digest = protocol.block_digest()
