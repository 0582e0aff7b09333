"""``resolve(handle)``: the registry with the built-in resolvers in place."""

from __future__ import annotations

import os

from tfhub.handles.chain import UpstreamResolver
from tfhub.handles.http import HttpCompressedResolver, HttpUncompressedResolver
from tfhub.handles.local import PathResolver
from tfhub.handles.objectstore import ObjectStoreResolver
from tfhub.handles.registry import Resolver, resolver

__all__ = ["register_resolver", "resolve"]

# Tried in reverse order: user resolvers, then upstream handles and the handle map, http(s),
# object stores, local paths.
for _impl in (
    PathResolver(),
    ObjectStoreResolver(),
    HttpUncompressedResolver(),
    HttpCompressedResolver(),
    UpstreamResolver(),
):
    resolver.add_implementation(_impl)


def resolve(handle: str | os.PathLike[str]) -> str:
    """Resolves a model handle to a local directory, downloading and caching it if needed.

    Args:
        handle: a local path, ``file://`` URL, ``http(s)://`` URL of a hosting-protocol server,
            a tfhub.dev / Kaggle / hub.tensorflow.google.cn model URL, or ``gs://`` /
            ``s3://`` location; rewritten first by ``TFHUB_HANDLE_MAP`` when a rule matches.

    Returns:
        The path of a directory holding the model.

    Raises:
        InvalidHandleError: not a string, or no resolver for its scheme.
        ModelNotFoundError: a local path or remote model that does not exist.
        OfflineError: TFHUB_OFFLINE is set and the handle is not cached.
        DownloadError: the network failed or the server answered with an error.
        ArchiveError: the server did not send a valid model archive.

    Example:
        >>> path = hub.resolve("https://hub.example.com/google/nnlm-en-dim50/2")
    """
    return resolver(handle)


def register_resolver(impl: Resolver) -> None:
    """Adds a resolver; it is tried before all built-in ones."""
    resolver.add_implementation(impl)
