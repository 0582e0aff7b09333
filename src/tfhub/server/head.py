"""``HEAD`` wherever ``GET`` works (pages, API, archives, blobs, the fast path).

A HEAD request runs through the app as the GET it stands for, so it gets exactly the GET's
status and headers (``Content-Length``, ``ETag``, ``Content-Type``, the security headers);
its body is never sent, and the app is stopped as soon as its headers are out: a HEAD on an
archive reads no more of the file than the GET reads before its status line, and is never a
completed download.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["HEAD_FLAG", "HeadAsGet"]

HEAD_FLAG = "tfhub.head"  # in the scope the app sees: the request was a HEAD (for the log)

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class _Sent(Exception):
    """The headers of a HEAD response are out: stop the GET that produced them."""


def _only_sent(exc: BaseException) -> bool:
    if isinstance(exc, _Sent):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_sent(e) for e in exc.exceptions)
    return False


class HeadAsGet:
    """ASGI middleware: answers ``HEAD`` as ``GET`` without the body."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                raise _Sent
            # nothing else is sent: the response ended with its headers

        try:
            # a copy: the server keeps its own scope, where the method is still HEAD
            await self.app({**scope, "method": "GET", HEAD_FLAG: True}, receive, headers_only)
        except BaseException as exc:
            if not _only_sent(exc):
                raise
