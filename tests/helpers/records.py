"""Version records written with the storage calls the publish path makes (an archive with
``put_file``, then the record with ``create``), without TensorFlow: for catalog tests and
``bench/catalog.py``."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["docs_of", "write_record"]


def docs_of(title: str, description: str, **metadata: str | list[str]) -> dict[str, Any]:
    """A parsed documentation dict, as :func:`tfhub.server.catalog.parse_docs` returns."""
    meta = {k.replace("_", "-"): v if isinstance(v, list) else [v] for k, v in metadata.items()}
    return {
        "title": title,
        "description": description,
        "metadata": meta,
        "markdown": f"{description}\n\n## Overview\n{title} in detail.",
    }


def write_record(
    storage: Any,
    name: str,
    *,
    docs: dict[str, Any] | None = None,
    private: bool = False,
    published_at: str = "2026-01-01T00:00:00+00:00",
    fmt: str = "saved_model_2",
    payload: bytes | None = None,
) -> dict[str, Any]:
    """Writes ``publisher/model/version`` (a tiny archive and its record); returns the record."""
    publisher, rest = name.split("/", 1)
    model, version = rest.rsplit("/", 1)
    body = payload if payload is not None else f"archive of {name}".encode()
    sha256 = hashlib.sha256(body).hexdigest()
    archive_key = f"{name}/{sha256}-0000abcd.tar.gz"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.tar.gz"
        path.write_bytes(body)
        storage.put_file(archive_key, path)
    blob_sha = hashlib.sha256(b"file:" + name.encode()).hexdigest()
    record: dict[str, Any] = {
        "publisher": publisher,
        "model": model,
        "version": int(version),
        "handle": name,
        "format": fmt,
        "info": {"format": fmt},
        "fine_tunable": False,
        "files": 1,
        "archive": {"key": archive_key, "size": len(body), "sha256": sha256},
        "blobs": {
            "block_size": 1 << 20,
            "files": [
                {"path": "saved_model.pb", "size": 100, "sha256": blob_sha, "blocks": [blob_sha]}
            ],
        },
        "docs": docs,
        "warnings": [],
        "published_at": published_at,
    }
    if private:
        record["private"] = True
    assert storage.create(f"{name}/meta.json", json.dumps(record, indent=1).encode())
    return record
