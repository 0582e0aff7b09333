"""Object-store handles (``gs://``, ``s3://``) through fsspec, cached like downloads.

A handle ending in ``.tar``, ``.tar.gz`` or ``.tgz`` names an archive, streamed and unpacked;
any other handle names a model directory, whose files are copied. Needs the optional extra:
``pip install "tfhub[gcs]"`` or ``"tfhub[s3]"``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tfhub import config, transport
from tfhub.errors import ArchiveTooLargeError, HubError, InvalidHandleError, ModelNotFoundError
from tfhub.handles import cache
from tfhub.handles.archive import extract_tar_stream, safe_member_path
from tfhub.handles.cache import FileRecord, Manifest
from tfhub.handles.registry import scheme_of

__all__ = ["ObjectStoreResolver"]

_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_CHUNK = 8 << 20


def _filesystem(handle: str) -> Any:
    scheme = scheme_of(handle) or ""
    try:
        import fsspec
    except ImportError:
        raise InvalidHandleError(
            f'{handle} needs fsspec; install it with pip install "tfhub[{_EXTRAS[scheme]}]".',
            handle=handle,
        ) from None
    try:
        # A fresh instance: credentials and endpoints are read from the environment now.
        return fsspec.filesystem(scheme, skip_instance_cache=True)
    except (ImportError, ValueError) as exc:
        raise InvalidHandleError(
            f"{handle}: no filesystem for {scheme}:// ({exc}); install it with "
            f'pip install "tfhub[{_EXTRAS[scheme]}]".',
            handle=handle,
        ) from exc


def _copy_tree(fs: Any, handle: str, dest: Path) -> Manifest:
    root = handle.rstrip("/")
    try:
        files = fs.find(root)
    except FileNotFoundError:
        files = []
    if not files:
        raise ModelNotFoundError(f"{handle} does not exist or is empty.", handle=handle)
    if len(files) > config.max_model_files():
        raise ArchiveTooLargeError(
            f"{handle} holds more than {config.max_model_files()} files "
            "(TFHUB_MAX_MODEL_FILES); raise the limit if this model really has that many.",
            handle=handle,
        )
    manifest: Manifest = {}
    limit = config.max_model_bytes()
    total = 0
    stripped = fs._strip_protocol(root)
    for remote in files:
        rel = safe_member_path(remote[len(stripped) :].lstrip("/"), source=handle)
        if rel is None:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with fs.open(remote, "rb", block_size=_CHUNK) as src, open(target, "wb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                total += len(chunk)
                if total > limit:
                    raise ArchiveTooLargeError(
                        f"{handle} holds more than {limit} bytes (TFHUB_MAX_MODEL_BYTES).",
                        handle=handle,
                    )
        manifest[rel] = FileRecord(size, digest.hexdigest())
    return manifest


class ObjectStoreResolver:
    """``gs://`` and ``s3://`` handles: archives or model directories in a bucket."""

    def is_supported(self, handle: str) -> bool:
        return scheme_of(handle) in _EXTRAS

    def __call__(self, handle: str) -> str:
        def fill(tmp: Path) -> Manifest:
            fs = _filesystem(handle)
            try:
                if handle.lower().endswith(_ARCHIVE_SUFFIXES):
                    with fs.open(handle, "rb", block_size=_CHUNK) as src:
                        return extract_tar_stream(src, tmp, source=handle)
                return _copy_tree(fs, handle, tmp)
            except HubError:
                raise
            except Exception as exc:  # the storage backend's own errors, whatever their type
                raise transport.translate(exc, handle=handle) from exc

        return cache.fetch(handle, fill, what="copied")
