"""Publishing a version: authorize, receive, validate, store, commit — or change nothing.

A version becomes visible only when its record is created, after the archive has been
checked (a safe tar, within ``TFHUB_MAX_UNPACKED_BYTES``, whose root is a model), the model
has been scanned and described in a separate, resource-limited process that never runs
anything of it (:mod:`tfhub.server.validate`), and the files are in the storage. Any failure
before that leaves nothing visible; a lost race for the same version gives 409 and removes
only our own archive.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from tfhub import config, protocol
from tfhub.errors import ArchiveError, ArchiveTooLargeError, PublishError
from tfhub.handles.archive import extract_tar_stream
from tfhub.handles.cache import Manifest
from tfhub.server.access import Tokens  # re-exported: it lived here
from tfhub.server.catalog import Catalog, ModelName, parse_docs
from tfhub.server.validate import validate_model
from tfhub.server.workdirs import new_workdir, remove_stale_workdirs

logger = logging.getLogger(__name__)

__all__ = ["BLOCK_SIZE", "PublishError", "Publisher", "Tokens", "blob_key"]

# Files are hashed per block of this size for the fast path (verification while streaming,
# parallel ranges, resume).
BLOCK_SIZE = protocol.BLOCK_SIZE


def blob_key(sha256: str) -> str:
    """Storage key of a content-addressed model file (dot-prefixed: never a publisher)."""
    return f".blobs/{sha256}"


class Upload:
    """A request body streamed to a temporary file, hashed and size-checked on the way."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.path = directory / f"upload-{uuid.uuid4().hex}.tar.gz"
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in finish()/discard()
        self._hash = hashlib.sha256()
        self.size = 0
        self._limit = limit

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise PublishError(f"The upload exceeds the limit of {self._limit} bytes.", status=413)
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class Publisher:
    """Validates and commits uploads into a :class:`Catalog`."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        max_upload_bytes: int,
        inspect_timeout: float,
        max_unpacked_bytes: int | None = None,
    ) -> None:
        self.catalog = catalog
        self.max_upload_bytes = max_upload_bytes
        self.max_unpacked_bytes = max_unpacked_bytes or config.max_unpacked_bytes()
        self.inspect_timeout = inspect_timeout
        # Uploads in progress, unpacked models, the validator's HOME, in a directory made on
        # first use (a hub that is only read makes none): removed by close(), or by the next
        # publisher on this host if this process is killed first.
        remove_stale_workdirs("publish")
        self._workdir: Path | None = None
        self._closed = False
        self._workdir_lock = threading.Lock()

    @property
    def workdir(self) -> Path:
        """Raises:
        PublishError: (503) the publisher was closed (the hub is stopping).
        """
        with self._workdir_lock:
            if self._closed:
                raise PublishError("The hub is shutting down; publish again later.", status=503)
            if self._workdir is None:
                self._workdir = new_workdir("publish")
            return self._workdir

    def close(self) -> None:
        """Removes the working directory (uploads in progress are discarded); the publisher
        takes no upload after this."""
        with self._workdir_lock:
            self._closed = True
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    def new_upload(self) -> Upload:
        return Upload(self.workdir, self.max_upload_bytes)

    def check_absent(self, name: ModelName) -> None:
        if self.catalog.storage.size(Catalog.record_key(name)) is not None:
            raise PublishError(f"{name.path} already exists; versions are immutable.", status=409)

    def _unpack(self, upload: Upload, unpacked: Path, name: ModelName) -> Manifest:
        try:
            with open(upload.path, "rb") as f:
                manifest = extract_tar_stream(
                    f, unpacked, source=name.path, max_bytes=self.max_unpacked_bytes
                )
        except ArchiveTooLargeError as exc:
            raise PublishError(
                f"The upload unpacks to more than {self.max_unpacked_bytes} bytes, the limit "
                f"of this hub (TFHUB_MAX_UNPACKED_BYTES): {exc}",
                status=413,
            ) from exc
        except ArchiveError as exc:
            raise PublishError(
                f"The upload is not a valid model archive: {exc}", status=422
            ) from exc
        if not protocol.is_model_dir(unpacked):
            raise PublishError(
                "The archive's root holds no saved_model.pb or tfhub_module.pb; create it "
                "with `tar -czf model.tar.gz -C export_dir .`.",
                status=422,
            )
        return manifest

    def _store_blobs(self, unpacked: Path, manifest: Manifest) -> dict[str, Any]:
        """Stores each file of the model content-addressed (``.blobs/<sha256>``, shared by
        every version holding the same bytes) and returns the fast-path description: per file
        its size, sha256 and the sha256 of each block, so that clients can fetch blocks in
        parallel and verify each one as it arrives."""
        storage = self.catalog.storage
        files = []
        for rel, record in sorted(manifest.items()):
            assert record.sha256 is not None  # extract_tar_stream always hashes
            path = unpacked / rel
            with open(path, "rb") as f:
                blocks = list(protocol.iter_block_hashes(f, BLOCK_SIZE))
            key = blob_key(record.sha256)
            if storage.size(key) != record.size or not storage.touch(key):  # in use (gc.py)
                storage.put_file(key, path)
            files.append(
                {"path": rel, "size": record.size, "sha256": record.sha256, "blocks": blocks}
            )
        return {"block_size": BLOCK_SIZE, "files": files}

    def publish(
        self,
        name: ModelName,
        upload: Upload,
        sha256: str,
        docs: str | None,
        *,
        provenance: dict[str, Any] | None = None,
        private: bool = False,
    ) -> dict[str, Any]:
        """Validates ``upload`` and commits it as ``name``; returns the new record.

        ``provenance`` (checked by :mod:`tfhub.server.provenance`) goes into the record as is.
        ``private``: only tokens with a read grant for it may read the version
        (:mod:`tfhub.server.access`); the record says ``"private": true``.
        """
        self.check_absent(name)
        parsed_docs = None
        if docs:
            try:
                parsed_docs = parse_docs(docs)
            except ValueError as exc:
                raise PublishError(f"Invalid documentation: {exc}", status=422) from exc
        warnings = parsed_docs.pop("warnings", []) if parsed_docs else []
        for warning in warnings:
            logger.warning("%s: documentation %s", name.path, warning)
        unpacked = self.workdir / f"unpacked-{uuid.uuid4().hex}"
        unpacked.mkdir()
        try:
            manifest = self._unpack(upload, unpacked, name)
            info = validate_model(
                unpacked,
                allow_unsafe_ops=config.allow_unsafe_ops(),
                timeout=self.inspect_timeout,
                home=self.workdir,
            )
            blobs = self._store_blobs(unpacked, manifest)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        archive_key = f"{name.path}/{sha256}-{uuid.uuid4().hex[:8]}.tar.gz"
        record = {
            "publisher": name.publisher,
            "model": name.model,
            "version": name.version,
            "handle": name.path,
            "format": info["format"],
            "info": info,
            "fine_tunable": info.get("fine_tunable", False),
            "files": len(manifest),
            "archive": {"key": archive_key, "size": upload.size, "sha256": sha256},
            "blobs": blobs,
            "docs": parsed_docs,
            "warnings": warnings,
            "published_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        if provenance is not None:
            record["provenance"] = provenance
        if private:
            record["private"] = True
        storage = self.catalog.storage
        storage.put_file(archive_key, upload.path)
        try:
            created = storage.create(
                Catalog.record_key(name), json.dumps(record, indent=1).encode()
            )
        except BaseException:
            storage.delete(archive_key)
            raise
        if not created:
            storage.delete(archive_key)
            raise PublishError(f"{name.path} already exists; versions are immutable.", status=409)
        self.catalog.insert(record)  # the record is the truth; a crash here: reconcile
        return record
