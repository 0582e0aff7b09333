"""``tfhub mirror pull``: copy models from upstream hubs and local caches into our hub.

Each SOURCE (see :mod:`tfhub.server.mirror_sources`) becomes items; each item is published at
the path :func:`tfhub.handles.upstream.mirror_path` gives its upstream handle, through a
hub's publish API (``server``) or straight into a storage root (``root``, the server's own
validation, nothing of the model is loaded), with its provenance in the version record.

* tfhub.dev, Kaggle and China-mirror handles are downloaded through tfhub's upstream chain
  (redirects, signed URLs, restarts) and unpacked with the client's archive checks, hashing
  the archive on the way (its sha256 and size go into the provenance); other URLs go through
  tfhub's resolver into a private temporary cache. Either is removed after each item, and
  the user's cache is left alone.
* An item already at its path with the same files (sha256 of each) is skipped; a different
  model at that path is a failure, never overwritten (versions are immutable).
* A version appears complete or not at all (the hub writes its record last), so a run that
  was killed is resumed by running it again: what was mirrored is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from tfhub import config
from tfhub.errors import ArchiveTooLargeError, HubError, PublishError, UsageError
from tfhub.handles.upstream import is_upstream
from tfhub.progress import count_bar
from tfhub.server.mirror_sources import Item, discover
from tfhub.server.provenance import MAX_PROVENANCE_BYTES, make_provenance
from tfhub.server.workdirs import remove_stale_workdirs, workdir_prefix

__all__ = ["Outcome", "Summary", "fetch_upstream", "pull", "read_source_file"]

logger = logging.getLogger(__name__)

_API_LIMIT = 4 << 20  # bytes of an upstream API answer we read at most
_MAX_DOCS = MAX_PROVENANCE_BYTES // 2


@dataclass(frozen=True)
class Outcome:
    """What became of one item: ``status`` is mirrored, skipped or failed."""

    label: str
    target: str | None
    status: str
    reason: str = ""


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> bool:
        return bool(self.of("failed"))


class _Target(Protocol):
    def record(self, name: str) -> dict[str, Any] | None: ...

    def publish(self, src: Path, name: str, provenance: dict[str, Any]) -> dict[str, Any]: ...


class _ServerTarget:
    def __init__(self, server: str, token: str | None) -> None:
        self.server, self.token = server, token

    def record(self, name: str) -> dict[str, Any] | None:
        from tfhub.server.client import fetch_record

        return fetch_record(self.server, name, token=self.token)

    def publish(self, src: Path, name: str, provenance: dict[str, Any]) -> dict[str, Any]:
        from tfhub.server.client import publish_to_server

        return publish_to_server(
            src, name, server=self.server, token=self.token, provenance=provenance
        )


class _RootTarget:
    def __init__(self, root: str) -> None:
        self.root = root

    def record(self, name: str) -> dict[str, Any] | None:
        from tfhub.server.catalog import Catalog, parse_model_path
        from tfhub.server.storage import open_storage

        return Catalog(open_storage(self.root)).record(parse_model_path(name))

    def publish(self, src: Path, name: str, provenance: dict[str, Any]) -> dict[str, Any]:
        from tfhub.server.client import publish_to_root

        return publish_to_root(src, name, root=self.root, provenance=provenance)


def read_source_file(path: str | os.PathLike[str]) -> list[str]:
    """The sources listed in ``path``: one per line; blank lines and ``#`` comments skipped.

    Raises:
        UsageError: the file cannot be read.
    """
    try:
        text = Path(path).read_text("utf8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"--from-file {path}: cannot read it ({exc}); give a UTF-8 text file with one "
            "source (URL or directory) per line."
        ) from exc
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def file_hashes(directory: Path) -> dict[str, str]:
    """``relative/path`` → sha256 of every file under ``directory``.

    Raises:
        UsageError: a link or other non-plain file (never followed; not publishable either).
    """
    hashes = {}
    for dirpath, dirs, names in os.walk(directory):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(full).st_mode):
                raise UsageError(f"{full} is not a plain file; a model holds plain files only.")
            digest = hashlib.sha256()
            with open(full, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            hashes[os.path.relpath(full, directory).replace(os.sep, "/")] = digest.hexdigest()
    return hashes


def _record_hashes(record: dict[str, Any]) -> dict[str, str]:
    files = (record.get("blobs") or {}).get("files") or []
    return {str(f["path"]): str(f["sha256"]) for f in files}


def upstream_info(handle: str) -> dict[str, Any]:
    """What a tfhub hub says about ``handle`` (``GET /api/models/<path>``): the archive's
    sha256 and size, license and docs. Other upstreams (tfhub.dev, Kaggle, static mirrors)
    have no such API; then, or on any error, nothing is known (an empty dict)."""
    parts = urlsplit(handle)
    path = parts.path.strip("/")
    if parts.scheme not in ("http", "https") or not path or parts.query or is_upstream(handle):
        return {}
    from tfhub.handles.http import session

    url = f"{parts.scheme}://{parts.netloc}/api/models/{path}"
    try:
        with session() as s, s.get(url, timeout=config.http_timeout(), stream=True) as resp:
            data = resp.raw.read(_API_LIMIT + 1, decode_content=True)
            if resp.status_code != 200 or len(data) > _API_LIMIT:
                return {}
            record = json.loads(data)
    except (OSError, ValueError, HubError):  # requests' errors are OSErrors
        return {}
    if not isinstance(record, dict) or not isinstance(record.get("archive"), dict):
        return {}
    docs: dict[str, Any] = record["docs"] if isinstance(record.get("docs"), dict) else {}
    licenses = (docs.get("metadata") or {}).get("license") or [None]
    markdown = docs.get("markdown") or None
    info = {
        "sha256": record["archive"].get("sha256"),
        "size": record["archive"].get("size"),
        "license": licenses[0],
        # docs past half the provenance limit are left out rather than fail the publish
        "docs": markdown if isinstance(markdown, str) and len(markdown) <= _MAX_DOCS else None,
    }
    return {k: v for k, v in info.items() if v is not None}


class _Counted:
    """A read-only stream that hashes and counts what is read through it."""

    def __init__(self, raw: Any, limit: int, handle: str) -> None:
        self.raw, self.limit, self.handle = raw, limit, handle
        self.digest, self.size = hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.raw.read(n if n and n > 0 else 1 << 20, decode_content=False)
        self.size += len(data)
        if self.size > self.limit:
            raise ArchiveTooLargeError(
                f"The archive of {self.handle} exceeds {self.limit} bytes "
                "(TFHUB_MAX_MODEL_BYTES); raise the limit to mirror it.",
                handle=self.handle,
            )
        self.digest.update(data)
        return data


def fetch_upstream(handle: str, dest: Path) -> dict[str, Any]:
    """Downloads the tfhub.dev / Kaggle / China-mirror model ``handle`` through the upstream
    chain (:func:`tfhub.handles.chain.open_archive`: the redirects, signed URLs and restarts
    of tfhub's resolver) and unpacks it into the empty directory ``dest`` with the client's
    checks (:func:`tfhub.handles.archive.extract_tar_stream`); returns the archive's sha256
    and size as received."""
    from tfhub.handles.archive import extract_tar_stream
    from tfhub.handles.chain import open_archive

    limit = config.max_model_bytes()
    with open_archive(handle) as resp:
        counted = _Counted(resp.raw, limit, handle)
        extract_tar_stream(counted, dest, source=handle)  # type: ignore[arg-type]
        while counted.read(1 << 20):  # the rest (end-of-archive padding): hashed too
            pass
    return {"sha256": counted.digest.hexdigest(), "size": counted.size}


def _provenance(handle: str, info: dict[str, Any]) -> dict[str, Any]:
    """The provenance of ``handle``; a field the upstream gave malformed is left out."""
    kept = {}
    for key, value in info.items():
        try:
            make_provenance(handle, **{key: value})
        except PublishError as exc:
            logger.warning(
                "%s: the upstream's %s is left out of the provenance: %s", handle, key, exc
            )
            continue
        kept[key] = value
    return make_provenance(handle, **kept)


class _Puller:
    def __init__(self, target: _Target, workdir: Path) -> None:
        self.target, self.workdir = target, workdir

    def _compare(self, item: Item, existing: dict[str, Any], directory: Path) -> Outcome:
        if _record_hashes(existing) == file_hashes(directory):
            return Outcome(item.label, item.target, "skipped", "already mirrored (same files)")
        origin = (existing.get("provenance") or {}).get("source") or "a publisher"
        return Outcome(
            item.label,
            item.target,
            "failed",
            f"a different model is already at {item.target} (from {origin}, published "
            f"{existing.get('published_at', '?')}); versions are immutable: remove it from "
            "the hub, or mirror this one to another path with --as",
        )

    def mirror(self, item: Item) -> Outcome:
        assert item.target is not None
        existing = self.target.record(item.target)
        local = item.directory is not None
        info = {} if local else upstream_info(item.handle)
        if existing is not None and info.get("sha256"):
            known = existing.get("provenance") or {}
            if (known.get("source"), known.get("sha256")) == (item.handle, info["sha256"]):
                return Outcome(
                    item.label, item.target, "skipped", "already mirrored (same archive)"
                )
        with tempfile.TemporaryDirectory(dir=self.workdir) as cache_root:
            directory = item.directory
            if directory is None and is_upstream(item.handle):
                directory = Path(cache_root) / "model"
                directory.mkdir()
                info = fetch_upstream(item.handle, directory)
            elif directory is None:
                from tfhub.handles.resolve import resolve

                with config.private_cache_dir(cache_root):
                    directory = Path(resolve(item.handle))
            if existing is not None:
                return self._compare(item, existing, directory)
            provenance = _provenance(item.handle, info)
            try:
                self.target.publish(directory, item.target, provenance)
            except PublishError as exc:
                if exc.status != 409:
                    raise
                existing = self.target.record(item.target)  # mirrored meanwhile by another run
                if existing is None:
                    raise
                return self._compare(item, existing, directory)
        return Outcome(item.label, item.target, "mirrored")


def pull(
    sources: Sequence[str],
    *,
    server: str | None = None,
    root: str | None = None,
    as_path: str | None = None,
    token: str | None = None,
    progress: bool | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Mirrors every item of ``sources`` into the hub at ``server`` or the storage ``root``.

    Args:
        as_path: the hub path of the only source (required for a local model directory).
        token: for ``server`` (default ``TFHUB_TOKEN``).
        progress: show a progress bar (default: ``TFHUB_DOWNLOAD_PROGRESS``).
        on_outcome: called with each outcome as soon as it is known.

    Returns:
        The summary; a failure of one item (named with its reason) does not stop the others.

    Raises:
        UsageError: no source, both or neither of ``server`` and ``root``, ``as_path`` with
            several sources, or a local model directory without ``as_path``.
    """
    if not sources:
        raise UsageError("Give at least one SOURCE (a URL or a directory), or --from-file.")
    if (server is None) == (root is None):
        raise UsageError("Give exactly one of --server URL and --root ROOT.")
    if as_path is not None and len(sources) != 1:
        raise UsageError("--as names the path of one model: give exactly one SOURCE with it.")
    items = []
    for source in sources:
        try:
            items += discover(source, as_path=as_path)
        except UsageError:
            raise
        except (HubError, OSError) as exc:  # e.g. a cache directory we may not read
            items.append(Item(source, source, None, problem=" ".join(str(exc).split())))
    target: _Target = _ServerTarget(server, token) if server else _RootTarget(str(root))
    summary = Summary()
    bar = count_bar("mirroring", len(items), enabled=progress)
    # Archives fetched from upstream and a private cache, in a working directory that a
    # later run removes if this one is killed (tfhub.server.workdirs).
    remove_stale_workdirs("mirror")
    with tempfile.TemporaryDirectory(prefix=workdir_prefix("mirror")) as workdir:
        puller = _Puller(target, Path(workdir))
        for item in items:
            if item.note is not None:
                outcome = Outcome(item.label, None, "skipped", item.note)
            elif item.problem is not None or item.target is None:
                outcome = Outcome(item.label, None, "failed", item.problem or "no target path")
            else:
                try:
                    outcome = puller.mirror(item)
                except (HubError, OSError) as exc:
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    outcome = Outcome(item.label, item.target, "failed", reason)
            summary.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return summary
