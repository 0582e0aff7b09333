"""Writing a model directory atomically: build it beside its final place, move it there last.

Every exporter of tfhub (:mod:`tfhub.exporters`: ``hub.export_keras``, the text-embedding and
sentence-transformer tools, ``hub.LatestModuleExporter``; and ``ModuleSpec.export``) writes
through :func:`staged_directory`, so a failure at any point leaves nothing behind and never
touches what was there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from tfhub.errors import UsageError

__all__ = ["check_new_directory", "staged_directory"]


def check_new_directory(target: str | os.PathLike[str]) -> Path:
    """The absolute path of ``target``, which must not exist or be an empty directory.

    Raises:
        UsageError: it exists and is a non-empty directory, or not a directory.
    """
    path = Path(os.path.abspath(target))  # abspath: "." has no name to put a temp beside
    if os.path.lexists(path) and not (path.is_dir() and not any(path.iterdir())):
        why = "it is not empty" if path.is_dir() else "it is not a directory"
        raise UsageError(
            f"{path} already exists and is not an empty directory ({why}); exports never "
            "overwrite anything. Choose a new directory, or remove this one first.",
            handle=str(path),
        )
    return path


@contextlib.contextmanager
def staged_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a new empty directory beside ``target`` to fill; when the block ends normally it
    becomes ``target``, and in every case the staging directory is gone afterwards.

    Raises:
        UsageError: ``target`` exists and is not an empty directory (checked before and again
            after the block), or the directory cannot be created or moved into place.
    """
    path = check_new_directory(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        staging.mkdir()  # 0o777 minus the umask: a published model stays readable
    except OSError as exc:
        raise UsageError(
            f"Cannot create a directory beside {path}: {exc}", handle=str(path)
        ) from exc
    try:
        yield staging
        check_new_directory(path)  # nobody wrote into it meanwhile
        try:
            if path.is_dir():
                path.rmdir()  # only an empty directory may be replaced
            os.replace(staging, path)
        except OSError as exc:
            raise UsageError(
                f"Could not move the export into place at {path}: {exc}", handle=str(path)
            ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
