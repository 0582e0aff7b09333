"""A small hosting-protocol server for tests, demos and quick local sharing.

It serves model directories the way tfhub.dev did: ``GET /<path>?tf-hub-format=compressed``
answers with a tar.gz of the directory (root = model root), any other ``GET`` with a short
HTML page. It runs in a background thread on 127.0.0.1 and an ephemeral port::

    with HostingServer({"demo/model/1": "/path/to/saved_model"}) as server:
        hub.load(server.url("demo/model/1"))

Routes may also be callables ``route(handler) -> None`` that write any response they like,
which tests use to simulate broken or hostile servers. Every request is recorded in
``server.requests`` as ``(method, path_with_query)``.

It is deliberately small (whole tarballs built in memory): a stand-in for a real hub server,
so that everything can be tried and tested on one machine. :func:`start_hub_server` runs the
real one (``tfhub serve``) in a subprocess instead.
"""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tfhub import protocol
from tfhub.server.packing import pack_model_dir

__all__ = ["HostingServer", "make_tarball", "respond", "send", "start_hub_server"]

Route = str | os.PathLike[str] | Callable[[http.server.BaseHTTPRequestHandler], None]


def make_tarball(model_dir: str | os.PathLike[str], *, compress: bool = True) -> bytes:
    """A tar(.gz) of ``model_dir`` whose root is the model root (``./saved_model.pb``, ...),
    packed as ``tfhub publish`` packs it (:func:`tfhub.server.packing.pack_model_dir`)."""
    buf = io.BytesIO()
    pack_model_dir(model_dir, buf, compress=compress, require_model=False)
    return buf.getvalue()


def send(
    handler: http.server.BaseHTTPRequestHandler,
    body: bytes = b"",
    status: int = 200,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    """Writes a complete response (with Content-Length) from inside a route."""
    handler.send_response(status)
    for key, value in headers:
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def respond(
    body: bytes = b"", status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    """A route that always answers with ``body`` (e.g. a crafted archive or an error)."""
    return lambda handler: send(handler, body, status, headers)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner._lock:
            owner.requests.append(("GET", self.path))
        parts = urllib.parse.urlsplit(self.path)
        key = parts.path.strip("/")
        route = owner.routes.get(key)
        if route is None:
            self.send_error(404, f"No model at /{key}")
            return
        if callable(route):
            route(self)
            return
        formats = urllib.parse.parse_qs(parts.query).get(protocol.FORMAT_PARAM, [])
        if protocol.COMPRESSED in formats:
            body = owner.tarball(key, Path(route))
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if formats:
            self.send_error(400, f"Unsupported {protocol.FORMAT_PARAM}: {formats}")
            return
        page = f"<html><body><h1>{key}</h1><p>A model.</p></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: HostingServer


class HostingServer:
    """Serves model directories over the hosting protocol on 127.0.0.1 (see module doc)."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = {k.strip("/"): v for k, v in (routes or {}).items()}
        self.requests: list[tuple[str, str]] = []
        self._tarballs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def tarball(self, key: str, model_dir: Path) -> bytes:
        with self._lock:
            if key not in self._tarballs:
                self._tarballs[key] = make_tarball(model_dir)
            return self._tarballs[key]

    def start(self) -> HostingServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> HostingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("The server is not running; call start() first.")
        return int(self._httpd.server_address[1])

    def url(self, path: str = "") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def count(self, path: str) -> int:
        """How many requests reached ``path`` (query ignored)."""
        with self._lock:
            return sum(
                1 for _, p in self.requests if urllib.parse.urlsplit(p).path.strip("/") == path
            )


def start_hub_server(
    root: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Starts ``tfhub serve ROOT`` on 127.0.0.1 and a free port; returns the process and its
    URL. The caller stops it (``proc.terminate()``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfhub.cli", "serve", os.fspath(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if " at http://" not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"tfhub serve did not start: {line!r}")
    return proc, line.strip().rsplit(" at ", 1)[1]
