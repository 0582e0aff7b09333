"""The model cache: layout shared with ``tensorflow_hub``, locks, checks, atomic installs.

Layout under the cache root (``TFHUB_CACHE_DIR``), identical to ``tensorflow_hub``'s so that
either library reuses the other's downloads::

    <sha1(handle)>/                  the model directory
    <sha1(handle)>.descriptor.txt    "Module: <handle>", download time, host and pid; its
                                     modification time is the entry's last use
    <sha1(handle)>.lock              "<host>.<pid>.<uuid>" while a download is running
    <sha1(handle)>.<uuid>.tmp/       a download in progress (0700, or 0750 if group-shared)
    <sha1(handle)>.partial/          tfhub only: blocks of an interrupted fast-path download

tfhub adds one sibling file, ``<sha1(handle)>.manifest.json``, listing every file of the
entry with its size and sha256 (or, for files that came by the fast path, the sha256 of each
block, as verified during the download).

The package, bottom to top: :mod:`.trust` (whose files are used, and removal that never
follows a link), :mod:`.entries` (paths, manifests, the check before each use, ``lookup``),
:mod:`.lock` (the download lock), :mod:`.install` (``install`` and ``fetch``) and
:mod:`.admin` (``list_entries``, ``remove``, ``prune``, ``verify`` for ``tfhub cache``).

**Whose files are used** (details in :mod:`.trust`): entries, manifests, descriptors and locks
that are not links and belong to you or root, or, in a group-shared cache (root directory
group-writable, not world-writable, of one of your groups), to that group and are not
world-writable; ``.partial/`` state only if it is yours alone. Anything else is removed when
the file system allows, or refused with a :class:`~tfhub.errors.CacheError` naming the path
and its owner; files are opened with ``O_NOFOLLOW`` and never written through.
"""

from __future__ import annotations

from tfhub.handles.cache.admin import CacheEntry, list_entries, prune, remove, verify
from tfhub.handles.cache.entries import (
    DESCRIPTOR_SUFFIX,
    LOCK_SUFFIX,
    MANIFEST_SUFFIX,
    PARTIAL_SUFFIX,
    FileRecord,
    Manifest,
    bad_blocks,
    check_entry,
    entry_path,
    lookup,
    partial_path,
    read_handle,
    read_manifest,
    verify_entry,
)
from tfhub.handles.cache.install import fetch, install, manifest_of, remove_entry

__all__ = [
    "DESCRIPTOR_SUFFIX",
    "LOCK_SUFFIX",
    "MANIFEST_SUFFIX",
    "PARTIAL_SUFFIX",
    "CacheEntry",
    "FileRecord",
    "Manifest",
    "bad_blocks",
    "check_entry",
    "entry_path",
    "fetch",
    "install",
    "list_entries",
    "lookup",
    "manifest_of",
    "partial_path",
    "prune",
    "read_handle",
    "read_manifest",
    "remove",
    "remove_entry",
    "verify",
    "verify_entry",
]
