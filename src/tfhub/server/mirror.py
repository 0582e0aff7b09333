"""``tfhub mirror export``: a static copy of a hub that any web server or bucket can serve.

The stock ``tensorflow_hub`` client asks for ``<url>?tf-hub-format=compressed``; static servers
ignore the query string, so each version's tar.gz is written at ``<publisher>/<model>/<version>``.
The latest version is also written as ``<publisher>/<model>/index.html``: a static server
answers ``/<publisher>/<model>`` with a redirect to the directory and then that file, so
unversioned handles work too (the client checks neither the redirect nor the content type).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tfhub.server.catalog import Catalog
from tfhub.server.storage import Storage, open_storage

__all__ = ["export_mirror"]


def _copy(storage: Storage, key: str, size: int, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as out:
        for chunk in storage.iter_range(key, 0, size - 1):
            out.write(chunk)
    os.replace(tmp, target)


def export_mirror(root: str, out: str | os.PathLike[str]) -> int:
    """Writes every version of every model under ``out``; returns how many versions."""
    catalog = Catalog(open_storage(root))
    target = Path(out)
    count = 0
    for model in catalog.models():
        base = target / model["publisher"] / model["model"]
        records = [
            r
            for r in catalog.all_records()
            if (r["publisher"], r["model"]) == (model["publisher"], model["model"])
        ]
        for record in records:
            archive = record["archive"]
            _copy(catalog.storage, archive["key"], archive["size"], base / str(record["version"]))
            count += 1
        latest = base / str(max(model["versions"]))
        shutil.copyfile(latest, base / "index.html")
    return count
