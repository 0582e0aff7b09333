"""Who may read and who may publish what: tokens, grants and the read scope of one request.

**Private models.** A model version is private when its record says ``"private": true`` (set
at publish: ``tfhub publish --private``, ``?private=true`` or the multipart field
``private``) or when its publisher is a private namespace (``TFHUB_PRIVATE_NAMESPACES``).
Reading a private model needs a read grant for its publisher, for the model
(``publisher/model``) or for everything (``*``); without one the hub answers exactly as for a
model that does not exist. Everything else is public.

**Tokens.** The server never holds a token, only its sha256 (tokens are 256-bit random
strings, so an unsalted hash is as strong as the token; the comparison is constant-time and
touches every line). A line of ``TFHUB_TOKEN_FILE``::

    sha256:<64 hex digits> read=<ns>[,<ns>/<model>...] publish=<ns>[,...]

``tfhub token new --read NS --publish NS`` prints a new token and its line. A publish grant
implies the read grant of the same namespaces. The old plaintext lines
``<token> <publisher>[,...]`` (publish grants) and ``TFHUB_PUBLISH_TOKEN`` (publish and read
everything) keep working; the server warns once about each plaintext line of the file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tfhub import config
from tfhub.errors import ConfigError, PublishError

__all__ = [
    "ReadScope",
    "TokenGrant",
    "Tokens",
    "cache_privately",
    "hash_token",
    "new_token",
    "scope_dependency",
    "token_line",
]

logger = logging.getLogger(__name__)

_HASH_PREFIX = "sha256:"
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_GRANT_NAME = re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._/-]+)?", re.ASCII)


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

    def allows(self, record: Mapping[str, Any]) -> bool:
        """Whether this request may see the version that ``record`` describes."""
        return self.can_read(record["publisher"], record["model"], record.get("private") is True)

    @property
    def anonymous(self) -> ReadScope:
        """What a request without a token may read on the same hub."""
        return ReadScope(self.private_namespaces)


class _WithHeaders(Protocol):
    @property
    def headers(self) -> Any: ...


_Response = TypeVar("_Response", bound=_WithHeaders)


def cache_privately(response: _Response, public: bool) -> _Response:
    """``response``; unless what it holds is ``public``, with ``Cache-Control: private`` (a
    shared cache must never keep a private model and hand it to other readers)."""
    if not public:
        value = response.headers.get("cache-control", "")
        value = value.removeprefix("public").lstrip(", ")
        response.headers["Cache-Control"] = f"private, {value}" if value else "private"
    return response


def hash_token(token: str) -> str:
    """The form a token is stored in: ``sha256:<hex>``."""
    return _HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A new random token (256 bits)."""
    return "tfhub_" + secrets.token_urlsafe(32)


def token_line(token: str, read: Iterable[str] = (), publish: Iterable[str] = ()) -> str:
    """The token-file line granting ``token`` ``read`` and ``publish`` (namespaces, models).

    Raises:
        ConfigError: no grant, or a grant that is not ``*``, a publisher or publisher/model.
    """
    reads, publishes = _grant_set(read, "--read"), _grant_set(publish, "--publish")
    if not reads and not publishes:
        raise ConfigError("A token needs a grant: give --read and/or --publish namespaces.")
    if any("/" in g for g in publishes):
        raise ConfigError("--publish grants namespaces (publishers), not publisher/model.")
    fields = [hash_token(token)]
    if reads:
        fields.append("read=" + ",".join(sorted(reads)))
    if publishes:
        fields.append("publish=" + ",".join(sorted(publishes)))
    return " ".join(fields)


def _grant_set(values: Iterable[str], what: str) -> frozenset[str]:
    grants = frozenset(g.strip() for value in values for g in value.split(",") if g.strip())
    for grant in grants:
        if not _GRANT_NAME.fullmatch(grant):
            raise ConfigError(
                f"{what} {grant!r} is not a grant: use *, a publisher or publisher/model."
            )
    return grants


@dataclass(frozen=True)
class TokenGrant:
    """One token, as the server knows it: its sha256 (never the token) and its grants."""

    digest: bytes
    read: frozenset[str] = frozenset()
    publish: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Tokens:
    """The hub's tokens and the private namespaces: who may publish and who may read what.

    Attributes:
        entries: the known tokens, hashed.
        private_namespaces: publishers whose every model is private.
    """

    entries: tuple[TokenGrant, ...] = ()
    private_namespaces: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls) -> Tokens:
        """``TFHUB_PUBLISH_TOKEN``, ``TFHUB_TOKEN_FILE`` and ``TFHUB_PRIVATE_NAMESPACES``.

        Raises:
            ConfigError: a line of the token file is neither a hashed nor a plaintext line.
        """
        entries = []
        single = config.publish_token()
        if single:
            entries.append(_plain(single, frozenset({"*"})))
        path = config.token_file()
        if path:
            entries.extend(_read_token_file(path))
        return cls(tuple(entries), config.private_namespaces())

    def _grant(self, authorization: str | None) -> TokenGrant | None:
        """The grant of the bearer token in ``authorization`` (None: none or unknown).

        Every entry is compared, in constant time, whatever matches."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found

    def read_scope(self, authorization: str | None) -> ReadScope:
        """What a request with this ``Authorization`` header may read (unknown: public only)."""
        grant = self._grant(authorization)
        grants = grant.read | grant.publish if grant is not None else frozenset()
        return ReadScope(self.private_namespaces, grants)

    def check(self, authorization: str | None, publisher: str) -> None:
        """Raises PublishError 401 (no or unknown token) or 403 (token for another publisher)."""
        if not any(entry.publish for entry in self.entries):
            raise PublishError(
                "Publishing is disabled on this server (no TFHUB_PUBLISH_TOKEN configured).",
                status=403,
            )
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PublishError("Missing 'Authorization: Bearer <token>' header.", status=401)
        grant = self._grant(authorization)
        if grant is None:
            raise PublishError("Unknown token.", status=401)
        if "*" not in grant.publish and publisher not in grant.publish:
            raise PublishError(
                f"This token may not publish for publisher {publisher!r}.", status=403
            )


def _plain(token: str, publish: frozenset[str]) -> TokenGrant:
    return TokenGrant(hashlib.sha256(token.encode()).digest(), frozenset(), publish)


def _read_token_file(path: Path) -> list[TokenGrant]:
    entries = []
    for number, line in enumerate(path.read_text("utf8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"TFHUB_TOKEN_FILE {path}:{number}"
        first, *rest = line.split()
        if first.startswith(_HASH_PREFIX):
            entries.append(_hashed_line(first, rest, where))
            continue
        publishers = " ".join(rest)
        if not publishers.strip():
            raise ConfigError(
                f"{where}: expected 'sha256:<hex> read=<ns>,... publish=<ns>,...' "
                "(see `tfhub token new`) or the old '<token> <publisher>[,...]'."
            )
        logger.warning(
            "%s holds a plaintext token; replace it with the line of `tfhub token new`.", where
        )
        entries.append(_plain(first, _grant_set([publishers], where)))
    return entries


def _hashed_line(first: str, rest: list[str], where: str) -> TokenGrant:
    hexdigest = first[len(_HASH_PREFIX) :]
    if not _HEX64.fullmatch(hexdigest):
        raise ConfigError(f"{where}: {first[:20]}... is not sha256: and 64 lower-case hex digits.")
    grants: dict[str, frozenset[str]] = {"read": frozenset(), "publish": frozenset()}
    for item in rest:
        kind, equals, names = item.partition("=")
        if kind not in grants or not equals:
            raise ConfigError(f"{where}: {item!r} is not read=<ns>,... or publish=<ns>,...")
        grants[kind] |= _grant_set([names], where)
    if not grants["read"] and not grants["publish"]:
        raise ConfigError(f"{where}: the token grants nothing; add read=... or publish=...")
    return TokenGrant(bytes.fromhex(hexdigest), grants["read"], grants["publish"])


def scope_dependency(tokens: Tokens) -> Callable[..., ReadScope]:
    """The FastAPI dependency giving a route the :class:`ReadScope` of its request."""
    from starlette.requests import Request

    def read_scope(request: Request) -> ReadScope:
        return tokens.read_scope(request.headers.get("authorization"))

    # Resolved here (starlette is imported only by the server, not by `tfhub token`): FastAPI
    # reads the annotation to inject the request.
    read_scope.__annotations__ = {"request": Request, "return": ReadScope}
    return read_scope
