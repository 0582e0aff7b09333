"""The installed version of tfhub, read from the package metadata (pyproject.toml is the one
place it is written)."""

from __future__ import annotations

import functools
import importlib.metadata

__all__ = ["version"]


@functools.cache
def version() -> str:
    """``tfhub``'s version as installed (``"0+unknown"`` in a source tree
    that was never installed). Read on first use: scanning the metadata costs milliseconds."""
    try:
        return importlib.metadata.version("tfhub")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
