"""Local handles: plain paths and ``file://`` URLs."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request

from tfhub.errors import ModelNotFoundError
from tfhub.handles.registry import scheme_of

__all__ = ["PathResolver", "local_path"]


def local_path(handle: str) -> str:
    """The filesystem path a local handle names (``file://`` URLs decoded, ``~`` expanded)."""
    if scheme_of(handle) == "file":
        parts = urllib.parse.urlsplit(handle)
        if parts.netloc not in ("", "localhost"):
            return handle  # a UNC-style file URL; let the existence check report it
        return urllib.request.url2pathname(parts.path)
    return os.path.expanduser(handle)


class PathResolver:
    """Resolves a local directory to itself, after checking that it exists."""

    def is_supported(self, handle: str) -> bool:
        return scheme_of(handle) in (None, "file")

    def __call__(self, handle: str) -> str:
        path = local_path(handle)
        if not os.path.exists(path):
            raise ModelNotFoundError(
                f"{handle} does not exist. Pass the path of a model directory (one holding "
                "saved_model.pb), or a URL such as https://host/publisher/model/1.",
                handle=handle,
            )
        return path
