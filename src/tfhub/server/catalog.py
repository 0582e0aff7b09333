"""The hub's catalog: model names, version records, documentation, search.

Layout in the storage::

    <publisher>/<model>/<version>/meta.json          the version record (its existence = the
                                                     version exists; written last, atomically)
    <publisher>/<model>/<version>/<sha256>.tar.gz    the archive served to clients

``<model>`` may contain slashes (``imagenet/mobilenet_v2/feature_vector``), as on tfhub.dev.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from tfhub import protocol
from tfhub.server.storage import LocalStorage, S3Storage

__all__ = ["Catalog", "ModelName", "NameError_", "parse_docs", "parse_model_path"]

RECORD = "meta.json"
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


class NameError_(ValueError):
    """A publisher, model or version name the hub does not accept."""


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
        NameError_: with a message naming the part and the rule.
    """
    if not protocol.PUBLISHER_RE.match(publisher):
        raise NameError_(
            f"Invalid publisher {publisher!r}: use lower-case letters, digits and '-'."
        )
    if not protocol.MODEL_NAME_RE.match(model) or any(
        part.startswith(".") or part.isdigit() for part in model.split("/")
    ):
        raise NameError_(
            f"Invalid model name {model!r}: use letters, digits, '_', '.', '-' and '/' between "
            "parts; a part may not start with '.' or be only digits (those are versions)."
        )
    if version is None:
        return ModelName(publisher, model)
    if not protocol.VERSION_RE.match(str(version)):
        raise NameError_(f"Invalid version {version!r}: versions are positive integers.")
    return ModelName(publisher, model, int(version))


def parse_model_path(path: str) -> ModelName:
    """``pub/model/3`` → version 3; ``pub/model`` → the latest version (``version=None``)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2:
        raise NameError_(f"{path!r} is not a model path: use /<publisher>/<model>[/<version>].")
    if parts[-1].isdigit() and len(parts) >= 3:
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
    return {"title": title, "description": description, "metadata": metadata, "markdown": text}


def body_started(body: list[str]) -> bool:
    """Metadata lines count only in the header (before the first heading of the body)."""
    return any(line.lstrip().startswith("#") for line in body)


class Catalog:
    """Reads and writes version records; keeps a short-lived in-memory index for listing."""

    def __init__(self, storage: LocalStorage | S3Storage, *, ttl: float = 2.0) -> None:
        self.storage = storage
        self._ttl = ttl
        self._lock = threading.Lock()
        self._index: list[dict[str, Any]] | None = None
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
        raw = self.storage.read_bytes(self.record_key(name))
        return None if raw is None else json.loads(raw)

    def all_records(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._index is None or time.monotonic() - self._loaded > self._ttl:
                records = []
                for key in self.storage.list_keys("/" + RECORD):
                    raw = self.storage.read_bytes(key)
                    if raw is not None:
                        records.append(json.loads(raw))
                self._index, self._loaded = records, time.monotonic()
            return list(self._index)

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
