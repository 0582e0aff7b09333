"""Connections that send nothing useful cannot starve the server.

uvicorn closes a keep-alive connection that stays silent after a response, but not one that
never completes its first request head, nor one that sends part of the next one; and every
open connection counts against ``limit_concurrency`` (beyond it, every request gets 503). So a
few hundred idle sockets took the whole server down.

:func:`guarded_protocol` returns uvicorn's HTTP protocol class with two additions:

* **a request-head deadline**: a connection that is waiting for a request (just opened, or
  after a response) and has not received a complete request line and headers within
  ``header_timeout`` seconds is closed. A request whose head arrived is never cut by it (a
  long upload or download keeps going);
* **a per-address cap**: a client address holding ``per_client`` open connections gets a
  ``503`` and an immediate close on any further one, so one address cannot take the
  connection slots that others need.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["guarded_protocol"]

logger = logging.getLogger(__name__)

_BUSY_BODY = b'{"error": "Too many connections from your address.", "status": 503}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def _base_protocol() -> type[Any]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # httptools is optional: uvicorn's pure-Python parser then
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def guarded_protocol(*, header_timeout: float, per_client: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with a request-head deadline and a per-address cap (see the
    module doc); pass it as ``uvicorn.Config(http=...)``. Each call has its own counters."""
    base = _base_protocol()
    open_per_address: dict[str, int] = {}

    class GuardedProtocol(base):  # type: ignore[misc,valid-type]
        _address: str | None = None
        _deadline: asyncio.TimerHandle | None = None
        _waiting_after: Any = None  # the request cycle that was current when the wait began

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
            self._address = address
            open_per_address[address] = open_per_address.get(address, 0) + 1
            if open_per_address[address] > per_client:
                logger.warning("Refused a connection from %s: %d open.", address, per_client)
                transport.write(_BUSY)
                transport.close()
                return
            self._wait_for_request()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            if self._address is not None:
                left = open_per_address.get(self._address, 1) - 1
                if left > 0:
                    open_per_address[self._address] = left
                else:
                    open_per_address.pop(self._address, None)
                self._address = None
            super().connection_lost(exc)

        def _idle(self) -> bool:
            return self.cycle is None or bool(self.cycle.response_complete)

        def _wait_for_request(self) -> None:
            self._stop_waiting()
            self._waiting_after = self.cycle
            self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _stop_waiting(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.cycle is self._waiting_after and self._idle():
                self.transport.close()  # no complete request head in time

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self._idle():
                self._wait_for_request()  # bytes of a new request on an idle connection
            super().data_received(data)
            if self._deadline is not None and self.cycle is not self._waiting_after:
                self._stop_waiting()  # a complete request head arrived

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self._idle():
                self._wait_for_request()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol
