"""Who may read what: the read scope of one request (private namespaces and models).

A model is private when its record says ``"private": true`` or when its publisher is a
private namespace; reading a private model needs a read grant for its publisher, for the
model (``publisher/model``) or for everything (``*``). Everything else is public.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReadScope"]


@dataclass(frozen=True)
class ReadScope:
    """What one request may read.

    Attributes:
        private_namespaces: publishers whose every model is private.
        grants: what the request's token may read beyond public models: publishers,
            ``publisher/model`` paths, or ``*`` for everything.
    """

    private_namespaces: frozenset[str] = frozenset()
    grants: frozenset[str] = frozenset()

    def can_read(self, publisher: str, model: str, private: bool) -> bool:
        """Whether this request may see the model (``private``: its record's flag)."""
        if not private and publisher not in self.private_namespaces:
            return True
        return bool({"*", publisher, f"{publisher}/{model}"} & self.grants)
