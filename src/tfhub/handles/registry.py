"""The resolver registry: which code turns a handle into a local directory.

Resolvers are tried newest first, so a resolver registered by the user takes precedence over
the built-in ones. A resolver is any object with ``is_supported(handle) -> bool`` and
``__call__(handle) -> str``::

    class MyResolver:
        def is_supported(self, handle):
            return handle.startswith("my://")

        def __call__(self, handle):
            return fetch_somehow(handle)

    hub.register_resolver(MyResolver())
"""

from __future__ import annotations

import os
import re
import threading
from typing import Protocol, runtime_checkable

from tfhub.errors import InvalidHandleError

__all__ = ["Resolver", "ResolverRegistry", "check_handle", "resolver", "scheme_of"]

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


@runtime_checkable
class Resolver(Protocol):
    """What the registry asks of a resolver."""

    def is_supported(self, handle: str) -> bool: ...

    def __call__(self, handle: str) -> str: ...


def check_handle(handle: object) -> str:
    """Returns ``handle`` if it is a non-empty string.

    Raises:
        InvalidHandleError: anything else (a ``ValueError``, as in ``tensorflow_hub``).
    """
    if isinstance(handle, str) and handle.strip():
        return handle
    if isinstance(handle, str):
        raise InvalidHandleError("The model handle is an empty string; pass a path or URL.")
    if isinstance(handle, os.PathLike):
        # Accept pathlib.Path and friends: they can only mean a local path.
        return str(os.fspath(handle))
    raise InvalidHandleError(
        f"Expected a string, got {handle!r} of type {type(handle).__name__}; a model handle is "
        "a path or URL such as 'https://host/publisher/model/1'.",
        handle=repr(handle),
    )


def scheme_of(handle: str) -> str | None:
    """The lower-cased URL scheme of ``handle`` (``"https"``), or None for a plain path."""
    match = _SCHEME_RE.match(handle)
    return match.group(1).lower() if match else None


class ResolverRegistry:
    """An ordered set of resolvers; the most recently added is tried first."""

    def __init__(self) -> None:
        self._impls: list[Resolver] = []
        self._lock = threading.Lock()

    def add_implementation(self, impl: Resolver) -> None:
        """Registers ``impl``; it is tried before every resolver registered earlier."""
        if not callable(getattr(impl, "is_supported", None)) or not callable(impl):
            raise TypeError(
                f"A resolver needs is_supported(handle) and __call__(handle); got {impl!r}."
            )
        with self._lock:
            self._impls.append(impl)

    def remove_implementation(self, impl: Resolver) -> None:
        """Unregisters ``impl`` (no error if it was not registered)."""
        with self._lock:
            self._impls = [i for i in self._impls if i is not impl]

    @property
    def implementations(self) -> tuple[Resolver, ...]:
        """The resolvers, in the order they are tried."""
        with self._lock:
            return tuple(reversed(self._impls))

    def __call__(self, handle: object) -> str:
        handle = check_handle(handle)
        for impl in self.implementations:
            if impl.is_supported(handle):
                return impl(handle)
        scheme = scheme_of(handle)
        raise InvalidHandleError(
            f"No resolver supports the handle {handle!r}"
            + (f" (scheme '{scheme}://')" if scheme else "")
            + "; use a local path, file://, http(s)://, gs:// or s3://, "
            "or register a resolver with tfhub.register_resolver().",
            handle=handle,
        )


resolver = ResolverRegistry()
