"""The hub server: hosting protocol, publishing API, JSON API and HTML pages (FastAPI).

Routes, each group in its own module (registered by :func:`create_app`):

* :mod:`tfhub.server.routes_files`: the hosting protocol (model URLs: archive, fast-path
  manifest or page) and ``/api/blobs/<sha256>``.
* :mod:`tfhub.server.routes_publish`: ``PUT``/``POST /api/models/<publisher>/<model>/<version>``.
* :mod:`tfhub.server.routes_api`: the catalog as JSON (described at ``/openapi.json``).
* :mod:`tfhub.server.routes_pages`: ``GET /``, the catalog page with search and filters.

``HEAD`` works wherever ``GET`` does (:mod:`tfhub.server.head`). Every response carries a
Content-Security-Policy (no inline script or style except the pages' own, by hash; no
framing), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: no-referrer``. Storage failures answer 503 and any other failure 500,
both as ``{"error": ...}`` JSON without a traceback (which goes to the log).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tfhub import config
from tfhub.errors import StorageError
from tfhub.server import routes_api, routes_files, routes_pages, routes_publish
from tfhub.server.catalog import Catalog
from tfhub.server.head import HEAD_FLAG, HeadAsGet
from tfhub.server.hub import Hub
from tfhub.server.pages import SECURITY_HEADERS
from tfhub.server.publish import Publisher, Tokens
from tfhub.server.responses import error_response
from tfhub.server.storage import open_storage
from tfhub.version import version

__all__ = ["create_app", "serve"]

access_log = logging.getLogger("tfhub.server.access")
logger = logging.getLogger(__name__)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*", re.ASCII)
_error = error_response


def create_app(
    root: str,
    *,
    tokens: Tokens | None = None,
    max_upload_bytes: int | None = None,
    inspect_timeout: float = 600.0,
    public_url: str | None = None,
) -> FastAPI:
    """The ASGI application over the storage at ``root`` (a directory or ``s3://bucket/...``).

    Args:
        root: the storage; the source of truth for everything the server shows.
        tokens: who may publish (default: from ``TFHUB_PUBLISH_TOKEN`` / ``TFHUB_TOKEN_FILE``).
        max_upload_bytes: largest accepted upload (default ``TFHUB_MAX_UPLOAD_BYTES`` or 8 GiB).
        inspect_timeout: seconds allowed to check and describe an uploaded model.
        public_url: the hub's URL in the pages' snippets (default ``TFHUB_PUBLIC_URL``, else
            ``http://localhost``); never taken from a request.
    """
    storage = open_storage(root)
    catalog = Catalog(storage)
    catalog.start()  # migrations, indexing what the storage holds, the periodic reconcile
    limit = max_upload_bytes or config.max_upload_bytes()
    publisher = Publisher(catalog, max_upload_bytes=limit, inspect_timeout=inspect_timeout)
    grants = tokens if tokens is not None else Tokens.from_env()
    base_url = (public_url or config.public_url() or "http://localhost").rstrip("/")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        catalog.close()  # writes the pending download counts
        publisher.close()  # removes uploads still in progress

    app = FastAPI(
        lifespan=lifespan,
        title="tfhub",
        description="A self-hosted TensorFlow Hub: hosting protocol, publishing and catalog.",
        version=version(),
        docs_url=None,
        redoc_url=None,
    )
    app.state.catalog = catalog
    hub = Hub(storage, catalog, publisher, grants, limit, base_url)

    @app.exception_handler(StorageError)
    def storage_failed(request: Request, exc: StorageError) -> Response:
        logger.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return _error(503, f"The hub's storage failed: {exc}")

    @app.exception_handler(Exception)
    def failed(request: Request, exc: Exception) -> Response:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "Internal error of the hub; the operator finds it in the log.")

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        if _PRINTABLE_ASCII.fullmatch(request.scope["path"]):  # not .url: it drops newlines
            response = await call_next(request)
        else:  # route parameters silently stop at a newline: refuse such paths whole
            response = _error(400, "Invalid path: names are printable ASCII (see the docs).")
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        access_log.info(
            "%s %s %s %s %.1fms",
            "HEAD" if request.scope.get(HEAD_FLAG) else request.method,
            request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            response.status_code,
            response.headers.get("content-length", "-"),
            (time.perf_counter() - start) * 1000,
        )
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}  # nothing about paths or configuration

    routes_api.register(app, hub)
    routes_publish.register(app, hub)
    routes_files.register_blobs(app, hub)
    routes_pages.register(app, hub)
    routes_files.register_models(app, hub)  # the catch-all: last
    app.add_middleware(HeadAsGet)  # HEAD wherever GET works
    return app


def serve(root: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Runs the server with uvicorn until interrupted (``tfhub serve``).

    Prints ``tfhub serving <root> at http://<host>:<port>`` once listening (with the real
    port when ``port`` is 0). Connections are guarded (:mod:`tfhub.server.connections`):
    ``TFHUB_HEADER_TIMEOUT`` seconds to send a request head, at most
    ``TFHUB_MAX_CONNECTIONS_PER_CLIENT`` open connections per client address. The pages'
    snippets use ``TFHUB_PUBLIC_URL``, else ``http://<host>:<port>``.
    """
    import resource
    import socket

    import uvicorn

    from tfhub.server.connections import guarded_protocol

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tfhub.server").setLevel(logging.INFO)  # the access log
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):  # room for the connections we hold, plus files
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    protocol_class = guarded_protocol(
        header_timeout=config.header_timeout(), per_client=config.max_connections_per_client()
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    bound = sock.getsockname()[1]
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    app = create_app(root, public_url=config.public_url() or f"http://{shown}:{bound}")
    print(f"tfhub serving {root} at http://{host}:{bound}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=protocol_class,
            log_config=None,  # keep our logging set-up (uvicorn's would replace the handlers)
            log_level="info",
            access_log=False,  # ours logs method, path, status, bytes and time
            timeout_keep_alive=5,
            limit_concurrency=4096,
        )
    )
    server.run(sockets=[sock])
