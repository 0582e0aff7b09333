"""The hub's catalog: model names, version records, documentation, search.

Layout in the storage::

    <publisher>/<model>/<version>/meta.json          the version record (its existence = the
                                                     version exists; written last, atomically)
    <publisher>/<model>/<version>/<sha256>.tar.gz    the archive served to clients

``<model>`` may contain slashes (``imagenet/mobilenet_v2/feature_vector``), as on tfhub.dev.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from tfhub import protocol
from tfhub.errors import ModelNameError
from tfhub.server.storage import Storage

__all__ = ["Catalog", "ModelName", "ModelNameError", "parse_docs", "parse_model_path"]

logger = logging.getLogger(__name__)

RECORD = "meta.json"
_MISS_REFRESH = 0.25  # seconds: how stale the blob index may be when a blob is not in it
_METADATA_RE = re.compile(r"^<!--\s*(?P<key>[\w\s-]+?)\s*:\s*(?P<value>.+?)\s*-->$")
_REPEATABLE = frozenset({"dataset", "language", "task", "network-architecture"})
KNOWN_METADATA = frozenset(
    {
        "asset-path",
        "module-type",
        "task",
        "fine-tunable",
        "format",
        "license",
        "network-architecture",
        "dataset",
        "language",
        "colab",
        "interactive-visualizer",
        "demo",
        "parent-model",
    }
)
# Accepted values of the controlled metadata keys (tfhub.dev's validator and tags/*.yaml).
FORMATS = frozenset({"hub", "saved_model", "saved_model_2"})
FINE_TUNABLE = frozenset({"true", "false"})
LICENSES = frozenset(
    {
        "apache-2.0",
        "bsd-2-clause",
        "bsd-3-clause",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl-2.0",
        "lgpl-2.1",
        "lgpl-3.0",
        "mit",
        "mpl-2.0",
        "cddl-1.0",
        "epl-2.0",
        "cc-by-nc-4.0",
        "cc-by-sa-4.0",
        "custom",
    }
)
TASK_PREFIXES = ("image-", "text-", "audio-", "video-")


# Longest accepted names: well past tfhub.dev's, well below the file systems' limits.
MAX_PUBLISHER = 64
MAX_MODEL = 200
MAX_MODEL_PART = 100
MAX_VERSION_DIGITS = 9


@dataclass(frozen=True)
class ModelName:
    publisher: str
    model: str
    version: int | None = None

    @property
    def path(self) -> str:
        base = f"{self.publisher}/{self.model}"
        return base if self.version is None else f"{base}/{self.version}"


def validate(publisher: str, model: str, version: str | int | None) -> ModelName:
    """Checks each part against the tfhub.dev naming rules.

    Raises:
        ModelNameError: with a message naming the part and the rule.
    """
    if len(publisher) > MAX_PUBLISHER or not protocol.PUBLISHER_RE.fullmatch(publisher):
        raise ModelNameError(
            f"Invalid publisher {publisher[:80]!r}: use up to {MAX_PUBLISHER} lower-case ASCII "
            "letters, digits and '-'."
        )
    if (
        len(model) > MAX_MODEL
        or not protocol.MODEL_NAME_RE.fullmatch(model)
        or any(
            part.startswith(".") or part.isdigit() or len(part) > MAX_MODEL_PART
            for part in model.split("/")
        )
    ):
        raise ModelNameError(
            f"Invalid model name {model[:80]!r}: use ASCII letters, digits, '_', '.', '-' and "
            f"'/' between parts (at most {MAX_MODEL} characters, {MAX_MODEL_PART} per part); a "
            "part may not start with '.' or be only digits (those are versions)."
        )
    if version is None:
        return ModelName(publisher, model)
    text = str(version)
    if len(text) > MAX_VERSION_DIGITS or not protocol.VERSION_RE.fullmatch(text):
        raise ModelNameError(
            f"Invalid version {text[:20]!r}: versions are positive integers written with the "
            f"ASCII digits 0-9 (at most {MAX_VERSION_DIGITS})."
        )
    return ModelName(publisher, model, int(text))


def parse_model_path(path: str) -> ModelName:
    """``pub/model/3`` → version 3; ``pub/model`` → the latest version (``version=None``)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2:
        raise ModelNameError(
            f"{path[:80]!r} is not a model path: use /<publisher>/<model>[/<version>]."
        )
    if len(parts) >= 3 and parts[-1].isascii() and parts[-1].isdigit():
        return validate(parts[0], "/".join(parts[1:-1]), parts[-1])
    return validate(parts[0], "/".join(parts[1:]), None)


def parse_docs(markdown: str) -> dict[str, Any]:
    """The tfhub.dev documentation format: a ``# Title`` line, a one-sentence description,
    ``<!-- key: value -->`` metadata lines, then free Markdown.

    Raises:
        ValueError: no title line, a malformed or unknown metadata key, or a repeated key
            that may not repeat.
    """
    lines = markdown.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("Documentation must start with a '# Title' line.")
    title = lines[0][2:].strip()
    metadata: dict[str, list[str]] = {}
    body: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if stripped.startswith("<!--") and not body_started(body):
            match = _METADATA_RE.match(stripped)
            if not match:
                raise ValueError(f"Line {number}: malformed metadata {stripped!r}.")
            key = match["key"].strip()
            if key not in KNOWN_METADATA:
                raise ValueError(
                    f"Line {number}: unknown metadata key {key!r}; known keys: "
                    f"{', '.join(sorted(KNOWN_METADATA))}."
                )
            if key in metadata and key not in _REPEATABLE:
                raise ValueError(f"Line {number}: metadata key {key!r} may not repeat.")
            metadata.setdefault(key, []).append(match["value"])
            continue
        body.append(line)
    text = "\n".join(body).strip()
    description = text.split("\n\n")[0].strip() if text else ""
    return {
        "title": title,
        "description": description,
        "metadata": metadata,
        "markdown": text,
        "warnings": metadata_warnings(metadata),
    }


def metadata_warnings(metadata: dict[str, list[str]]) -> list[str]:
    """What a publisher should fix in accepted metadata: values outside tfhub.dev's
    vocabularies (kept as written, but flagged, never silently trusted)."""
    warnings = []

    def check(key: str, allowed: frozenset[str]) -> None:
        for value in metadata.get(key, []):
            if value.strip().lower() not in allowed:
                warnings.append(
                    f"metadata {key}: {value!r} is not one of {', '.join(sorted(allowed))}."
                )

    check("format", FORMATS)
    check("fine-tunable", FINE_TUNABLE)
    check("license", LICENSES)
    for key in ("module-type", "task"):
        for value in metadata.get(key, []):
            if not value.strip().lower().startswith(TASK_PREFIXES):
                warnings.append(
                    f"metadata {key}: {value!r} is not a task (tasks start with "
                    f"{', '.join(TASK_PREFIXES)} as in text-embedding)."
                )
    if "module-type" in metadata:
        warnings.append("metadata module-type is the old name of task (removed 2021): use task.")
    return warnings


def body_started(body: list[str]) -> bool:
    """Metadata lines count only in the header (before the first heading of the body)."""
    return any(line.lstrip().startswith("#") for line in body)


class Catalog:
    """Reads and writes version records; keeps a short-lived in-memory index for listing."""

    def __init__(self, storage: Storage, *, ttl: float = 2.0) -> None:
        self.storage = storage
        self._ttl = ttl
        self._lock = threading.Lock()
        self._index: list[dict[str, Any]] | None = None
        self._blobs: dict[str, dict[str, Any]] = {}
        self._loaded = 0.0

    @staticmethod
    def record_key(name: ModelName) -> str:
        return f"{name.path}/{RECORD}"

    def record(self, name: ModelName) -> dict[str, Any] | None:
        """The record of one version, or of the latest when ``name.version`` is None."""
        if name.version is None:
            versions = self.versions(name)
            if not versions:
                return None
            name = ModelName(name.publisher, name.model, versions[-1])
        key = self.record_key(name)
        return _checked_record(key, self.storage.read_bytes(key))

    def all_records(self, max_age: float | None = None) -> list[dict[str, Any]]:
        """Every valid record, from an index at most ``max_age`` (default: the ttl) old."""
        age = self._ttl if max_age is None else max_age
        with self._lock:
            if self._index is None or time.monotonic() - self._loaded > age:
                records = []
                for key in self.storage.list_keys("/" + RECORD):
                    record = _checked_record(key, self.storage.read_bytes(key))
                    if record is not None:
                        records.append(record)
                self._index, self._loaded = records, time.monotonic()
                self._blobs = _referenced_blobs(records)
            return list(self._index)

    def blob(self, sha256: str) -> dict[str, Any] | None:
        """The published file named ``sha256`` (``size``, ``block_size``, ``blocks``: the
        sha256 of each block), or None when no published record references it."""
        self.all_records()  # refreshes the index when it is older than the ttl
        with self._lock:
            found = self._blobs.get(sha256)
        if found is None:  # published a moment ago on another replica? (refreshes: <= 4/s)
            self.all_records(max_age=_MISS_REFRESH)
            with self._lock:
                found = self._blobs.get(sha256)
        return found

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def versions(self, name: ModelName) -> list[int]:
        return sorted(
            r["version"]
            for r in self.all_records()
            if r["publisher"] == name.publisher and r["model"] == name.model
        )

    def models(self) -> list[dict[str, Any]]:
        """One summary per model: its latest record plus the list of versions."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        versions: dict[tuple[str, str], list[int]] = {}
        for record in self.all_records():
            key = (record["publisher"], record["model"])
            versions.setdefault(key, []).append(record["version"])
            if key not in latest or record["version"] > latest[key]["version"]:
                latest[key] = record
        return [{**latest[key], "versions": sorted(versions[key])} for key in sorted(latest)]

    def search(
        self,
        q: str | None = None,
        publisher: str | None = None,
        fmt: str | None = None,
        module_type: str | None = None,
    ) -> list[dict[str, Any]]:
        results = []
        for model in self.models():
            docs = model.get("docs") or {}
            meta = docs.get("metadata", {})
            types = meta.get("module-type", []) + meta.get("task", [])
            if publisher and model["publisher"] != publisher:
                continue
            if fmt and model["format"] != fmt:
                continue
            if module_type and module_type not in types:
                continue
            if q:
                haystack = " ".join(
                    [model["publisher"], model["model"], docs.get("title", ""),
                     docs.get("description", ""), *types]
                ).lower()  # fmt: skip
                if not all(word in haystack for word in q.lower().split()):
                    continue
            results.append(model)
        return results


def _checked_record(key: str, raw: bytes | None) -> dict[str, Any] | None:
    """The record stored at ``key``, if it is one and names the version its key names."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        name = validate(record["publisher"], record["model"], record["version"])
        if not isinstance(record["version"], int) or Catalog.record_key(name) != key:
            raise ValueError(f"it names {name.path}")
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("Ignoring the record %s: not a valid record for its key (%s).", key, exc)
        return None
    return record  # type: ignore[no-any-return]


def _referenced_blobs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """sha256 → size, block size and block hashes of every file a record references."""
    blobs: dict[str, dict[str, Any]] = {}
    for record in records:
        described = record.get("blobs") or {}
        for f in described.get("files", []):
            blobs[f["sha256"]] = {
                "size": int(f["size"]),
                "block_size": int(described["block_size"]),
                "blocks": list(f["blocks"]),
            }
    return blobs
