"""``tfhub mirror export``: a static copy of a hub that any web server or bucket can serve.

The stock ``tensorflow_hub`` client asks for ``<url>?tf-hub-format=compressed``; static servers
ignore the query string, so each version's tar.gz is written at ``<publisher>/<model>/<version>``.
The latest version is also written as ``<publisher>/<model>/index.html``: a static server
answers ``/<publisher>/<model>`` with a redirect to the directory and then that file, so
unversioned handles work too (the client checks neither the redirect nor the content type).

The tree is built beside ``out`` and moved into place when complete
(:func:`tfhub.staging.staged_directory`); every archive is checked against its record's
sha256 on the way, so a mirror never carries bytes altered in the storage. A static tree is
public: private versions and namespaces (:mod:`tfhub.server.access`) are left out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from tfhub import config
from tfhub.errors import StorageError
from tfhub.server.access import ReadScope
from tfhub.server.catalog import Catalog
from tfhub.server.storage import Storage, open_storage
from tfhub.staging import staged_directory

__all__ = ["export_mirror"]


def _copy(storage: Storage, archive: dict[str, object], target: Path) -> None:
    key, size = str(archive["key"]), int(str(archive["size"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for chunk in storage.iter_range(key, 0, size - 1) if size else ():
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != archive["sha256"]:
        raise StorageError(
            f"The stored archive {key!r} does not match its record's sha256; it was altered "
            "in the storage after publishing. Re-publish that version, then export again.",
            key=key,
        )


def export_mirror(root: str, out: str | os.PathLike[str]) -> int:
    """Writes every public version of every model under ``out`` (which must not exist or be
    an empty directory); returns how many versions.

    Raises:
        UsageError: ``out`` exists and is not an empty directory.
        StorageError: the storage failed, or an archive does not match its record.
    """
    catalog = Catalog(open_storage(root))
    count = 0
    with staged_directory(out) as target:
        public = ReadScope(config.private_namespaces())
        records = [r for r in catalog.all_records() if public.allows(r)]
        for model in catalog.models():
            base = target / model["publisher"] / model["model"]
            exported = []
            for record in records:
                if (record["publisher"], record["model"]) == (model["publisher"], model["model"]):
                    _copy(catalog.storage, record["archive"], base / str(record["version"]))
                    exported.append(record["version"])
            if exported:
                shutil.copyfile(base / str(max(exported)), base / "index.html")
                count += len(exported)
    return count
