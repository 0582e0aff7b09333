"""Hosting routes (for ``tfhub.testing.HostingServer``) that stop at a chosen point."""

from __future__ import annotations

import http.server
import threading


class StopAt:
    """Serves ``body`` (200, ``Content-Length``) and, on the first request, stops at byte
    ``stop_at`` and sets :attr:`reached`; the rest follows once :attr:`release` is set.

    ``stop_at=None`` stops before anything is sent (not even the status line); ``0`` right
    after the headers; ``len(body)`` once every byte is out (the connection still open).
    Later requests are served straight through. This makes kill points deterministic: wait
    for :attr:`reached`, then kill the client, which has been sent exactly ``stop_at`` bytes.
    """

    def __init__(self, body: bytes, stop_at: int | None) -> None:
        assert stop_at is None or 0 <= stop_at <= len(body)
        self.body = body
        self.stop_at = stop_at
        self.reached = threading.Event()
        self.release = threading.Event()
        self._first = True
        self._lock = threading.Lock()

    def __call__(self, h: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            first, self._first = self._first, False
        try:
            if first and self.stop_at is None:
                self._hold()
            h.send_response(200)
            h.send_header("Content-Length", str(len(self.body)))
            h.end_headers()
            if first and self.stop_at is not None:
                h.wfile.write(self.body[: self.stop_at])
                h.wfile.flush()
                self._hold()
                h.wfile.write(self.body[self.stop_at :])
            else:
                h.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed

    def _hold(self) -> None:
        self.reached.set()
        self.release.wait(timeout=60)
