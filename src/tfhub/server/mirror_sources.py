"""What ``tfhub mirror pull`` can copy from: each SOURCE becomes one or more :class:`Item`.

* a hosting-protocol URL (``https://tfhub.dev/...``, Kaggle, any tfhub or static hub): one
  item, downloaded later by tfhub's own resolver;
* a ``tensorflow_hub`` (or tfhub) cache directory: one item per complete entry
  (``<sha1>/`` with ``<sha1>.descriptor.txt`` naming its handle); entries being written or
  left half-written (a ``.lock``, no descriptor, only a ``<sha1>.<uuid>.tmp/`` download
  directory) are reported, not mirrored; a descriptor naming a handle whose sha1 is not the
  entry's name is a failure;
* a kagglehub cache (``[.../]models/<owner>/<model>/<framework>/<variation>/<version>/``):
  one item per version whose ``<version>.complete`` marker kagglehub wrote;
* a local model directory: one item, published at ``--as PATH``.

Nothing here touches the network or the target hub.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfhub import protocol
from tfhub.errors import HubError, UsageError
from tfhub.handles.cache import DESCRIPTOR_SUFFIX, LOCK_SUFFIX, read_handle
from tfhub.handles.upstream import mirror_path

__all__ = ["Item", "discover"]

_SHA1_DIR = re.compile(r"[0-9a-f]{40}")
_TMP_DIR = re.compile(r"(?P<entry>[0-9a-f]{40})\.[^/]+\.tmp")  # a download under way (or dead)
_HALF_WRITTEN = (
    "a half-written tensorflow_hub cache entry (no descriptor, or a download holds its lock "
    "or never finished): resolve its handle again to complete it"
)
_KAGGLE_MODELS = "https://www.kaggle.com/models"


@dataclass
class Item:
    """One model to mirror.

    Attributes:
        label: what the summary calls it (the upstream handle, or the path given).
        handle: the upstream handle (provenance ``source``).
        target: ``publisher/model/version`` on the hub, or None when ``problem`` says why not.
        directory: the model's files when they are local already; None: download ``handle``.
        problem: why it cannot be mirrored (reported as a failure), or None.
        note: why it is left out without being a failure (a half-written cache entry).
    """

    label: str
    handle: str
    target: str | None
    directory: Path | None = None
    problem: str | None = None
    note: str | None = None


def _target(handle: str) -> tuple[str | None, str | None]:
    try:
        return mirror_path(handle), None
    except HubError as exc:
        return None, str(exc)


def _upstream_item(handle: str, directory: Path | None = None, label: str = "") -> Item:
    target, problem = _target(handle)
    return Item(label or handle, handle, target, directory, problem)


def _tf_hub_cache_items(root: Path) -> list[Item]:
    items = []
    names = set(os.listdir(root))
    for name in sorted(names):
        entry = root / name
        tmp = _TMP_DIR.fullmatch(name)
        if tmp is not None and tmp["entry"] not in names:
            items.append(Item(str(entry), str(entry), None, note=_HALF_WRITTEN))
            continue
        if not _SHA1_DIR.fullmatch(name) or entry.is_symlink() or not entry.is_dir():
            continue
        label = str(entry)
        handle = read_handle(entry) if name + DESCRIPTOR_SUFFIX in names else None
        if handle is None or name + LOCK_SUFFIX in names:
            items.append(Item(label, label, None, note=_HALF_WRITTEN))
        elif hashlib.sha1(handle.encode("utf8")).hexdigest() != name:
            items.append(
                Item(label, handle, None, problem=f"its descriptor names {handle!r}, whose "
                     "cache entry has another name; the entry was moved or edited")
            )  # fmt: skip
        elif not protocol.is_model_dir(entry):
            items.append(Item(label, handle, None, problem="the entry holds no model"))
        else:
            items.append(_upstream_item(handle, entry, label=f"{handle} ({label})"))
    return items


def _kagglehub_items(models: Path) -> list[Item]:
    """``models/<owner>/<model>/<framework>/<variation>/<version>/`` (plus the marker file
    ``<version>.complete`` that kagglehub creates once the version is complete)."""
    items = []
    for version_dir in sorted(models.glob("*/*/*/*/*")):
        if not version_dir.is_dir() or version_dir.is_symlink() or not version_dir.name.isdigit():
            continue
        owner, model, framework, variation, version = version_dir.relative_to(models).parts
        handle = f"{_KAGGLE_MODELS}/{owner}/{model}/{framework}/{variation}/{version}"
        if not (version_dir.parent / f"{version}.complete").is_file():
            items.append(
                Item(
                    f"{handle} ({version_dir})",
                    handle,
                    None,
                    note="kagglehub has not finished downloading it (no "
                    f"{version}.complete marker): download it again with kagglehub",
                )
            )
            continue
        items.append(_upstream_item(handle, version_dir, label=f"{handle} ({version_dir})"))
    return items


def _kagglehub_models_dir(path: Path) -> Path | None:
    if path.name == "models" and not protocol.is_model_dir(path):
        return path
    candidate = path / "models"
    return candidate if candidate.is_dir() and not protocol.is_model_dir(path) else None


def discover(source: str, *, as_path: str | None = None) -> list[Item]:
    """The items of one SOURCE (see the module docstring); problems become failed items.

    Raises:
        UsageError: a local model directory without ``as_path``, or ``as_path`` with a
            source that is not one model.
    """
    if source.startswith(("http://", "https://")):
        if as_path is not None:
            return [Item(source, source, as_path)]
        return [_upstream_item(source)]
    path = Path(source).expanduser()
    if not path.is_dir():
        reason = "does not exist" if not path.exists() else "is not a directory"
        return [Item(source, source, None, problem=f"{reason}: give a URL or a directory")]
    if protocol.is_model_dir(path):
        if as_path is None:
            raise UsageError(
                f"{source} is a local model directory: give its path on the hub with --as "
                "publisher/model/version."
            )
        return [Item(source, str(path.resolve()), as_path, path)]
    finder: Callable[[Path], list[Item]] | None = None
    models = _kagglehub_models_dir(path)
    if models is not None:
        found = models
        finder = _kagglehub_items
    elif any(n.endswith(DESCRIPTOR_SUFFIX) for n in os.listdir(path)):
        found = path
        finder = _tf_hub_cache_items
    if finder is None:
        return [
            Item(
                source,
                source,
                None,
                problem="holds no model, tensorflow_hub cache (<sha1>.descriptor.txt files) "
                "or kagglehub cache (models/<owner>/<model>/...)",
            )
        ]
    if as_path is not None:
        raise UsageError(f"--as names one model; {source} is a cache of many: leave --as out.")
    return finder(found)
