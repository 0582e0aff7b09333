"""Publishing a version: authorize, receive, validate, store, commit — or change nothing.

A version becomes visible only when its record is created, after the archive has been
checked (a safe tar whose root is a model), the model has loaded in a separate process
(which also extracts its signatures), and the archive is in the storage. Any failure before
that leaves nothing visible; a lost race for the same version gives 409 and removes only our
own archive.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfhub import protocol
from tfhub.config import env_flag
from tfhub.errors import ArchiveError
from tfhub.handles.archive import extract_tar_stream
from tfhub.handles.cache import Manifest
from tfhub.server.catalog import Catalog, ModelName, parse_docs

__all__ = ["BLOCK_SIZE", "PublishError", "Publisher", "Tokens", "blob_key"]

# Files are hashed per block of this size for the fast path (verification while streaming,
# parallel ranges, resume).
BLOCK_SIZE = protocol.BLOCK_SIZE


def blob_key(sha256: str) -> str:
    """Storage key of a content-addressed model file (dot-prefixed: never a publisher)."""
    return f".blobs/{sha256}"


class PublishError(Exception):
    """A rejected publish, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens and the publishers each may write (``*``: all)."""

    grants: dict[str, frozenset[str]]

    @classmethod
    def from_env(cls) -> Tokens:
        """``TFHUB_PUBLISH_TOKEN`` (every publisher) and ``TFHUB_TOKEN_FILE``.

        The token file has one ``<token> <publisher>[,<publisher>...]`` per line (``*`` for
        all publishers); blank lines and ``#`` comments are ignored.
        """
        grants: dict[str, frozenset[str]] = {}
        single = os.environ.get("TFHUB_PUBLISH_TOKEN", "").strip()
        if single:
            grants[single] = frozenset({"*"})
        path = os.environ.get("TFHUB_TOKEN_FILE", "").strip()
        if path:
            for number, line in enumerate(Path(path).read_text("utf8").splitlines(), start=1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                token, _, publishers = line.partition(" ")
                if not publishers.strip():
                    raise ValueError(f"{path}:{number}: expected '<token> <publisher>[,...]'.")
                grants[token] = frozenset(p.strip() for p in publishers.split(",") if p.strip())
        return cls(grants)

    def check(self, authorization: str | None, publisher: str) -> None:
        """Raises PublishError 401 (no or unknown token) or 403 (token for another publisher)."""
        if not self.grants:
            raise PublishError(
                403, "Publishing is disabled on this server (no TFHUB_PUBLISH_TOKEN configured)."
            )
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PublishError(401, "Missing 'Authorization: Bearer <token>' header.")
        allowed = None
        for known, publishers in self.grants.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                allowed = publishers
        if allowed is None:
            raise PublishError(401, "Unknown token.")
        if "*" not in allowed and publisher not in allowed:
            raise PublishError(403, f"This token may not publish for publisher {publisher!r}.")


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
            raise PublishError(413, f"The upload exceeds the limit of {self._limit} bytes.")
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

    def __init__(self, catalog: Catalog, *, max_upload_bytes: int, inspect_timeout: float) -> None:
        self.catalog = catalog
        self.max_upload_bytes = max_upload_bytes
        self.inspect_timeout = inspect_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="tfhub-server-"))

    def close(self) -> None:
        """Removes the working directory (uploads in progress are discarded)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def new_upload(self) -> Upload:
        return Upload(self.workdir, self.max_upload_bytes)

    def check_absent(self, name: ModelName) -> None:
        if self.catalog.storage.size(Catalog.record_key(name)) is not None:
            raise PublishError(409, f"{name.path} already exists; versions are immutable.")

    def _inspect(self, model_dir: Path) -> dict[str, Any]:
        # The validator loads a stranger's model: it gets no secrets (tokens, cloud keys).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TFHUB_PUBLISH_TOKEN", "TFHUB_TOKEN", "AWS_", "GOOGLE_"))
        }
        env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        command = [sys.executable, "-m", "tfhub.tools.inspect", str(model_dir)]
        if not env_flag("TFHUB_ALLOW_UNSAFE_OPS"):
            command.append("--refuse-unsafe")  # scanned before anything of it runs
        try:
            proc = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self.inspect_timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise PublishError(422, "Validating the model took too long.") from None
        lines = proc.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            result = {"error": proc.stderr[-500:] or "the validator crashed"}
        if proc.returncode != 0 or "error" in result:
            error = result.get("error", f"the validator exited with status {proc.returncode}")
            raise PublishError(422, f"The upload is not a model that loads: {error}")
        return result

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
            if storage.size(key) != record.size:
                storage.put_file(key, path)
            files.append(
                {"path": rel, "size": record.size, "sha256": record.sha256, "blocks": blocks}
            )
        return {"block_size": BLOCK_SIZE, "files": files}

    def publish(
        self, name: ModelName, upload: Upload, sha256: str, docs: str | None
    ) -> dict[str, Any]:
        """Validates ``upload`` and commits it as ``name``; returns the new record."""
        self.check_absent(name)
        parsed_docs = None
        if docs:
            try:
                parsed_docs = parse_docs(docs)
            except ValueError as exc:
                raise PublishError(422, f"Invalid documentation: {exc}") from exc
        unpacked = self.workdir / f"unpacked-{uuid.uuid4().hex}"
        unpacked.mkdir()
        try:
            try:
                with open(upload.path, "rb") as f:
                    manifest = extract_tar_stream(f, unpacked, source=name.path)
            except ArchiveError as exc:
                raise PublishError(422, f"The upload is not a valid model archive: {exc}") from exc
            if not protocol.is_model_dir(unpacked):
                raise PublishError(
                    422,
                    "The archive's root holds no saved_model.pb or tfhub_module.pb; create it "
                    "with `tar -czf model.tar.gz -C export_dir .`.",
                )
            info = self._inspect(unpacked)
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
            "published_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        storage = self.catalog.storage
        storage.put_file(archive_key, upload.path)
        if not storage.create(Catalog.record_key(name), json.dumps(record, indent=1).encode()):
            storage.delete(archive_key)
            raise PublishError(409, f"{name.path} already exists; versions are immutable.")
        self.catalog.invalidate()
        return record
