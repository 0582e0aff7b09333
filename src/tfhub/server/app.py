"""The hub server: hosting protocol, publishing API, JSON API and HTML pages (FastAPI).

Routes:

* ``GET /<publisher>/<model>[/<version>]?tf-hub-format=compressed``: the model's tar.gz,
  streamed from storage, with ``Content-Length``, ``ETag``, ``Range`` support and a sha256
  digest. Without the query parameter: the model page. ``/<publisher>/<model>`` is the latest.
  With ``Accept: application/vnd.tfhub.files+json`` (tfhub clients): the manifest of the
  model's files instead (the fast path, see :mod:`tfhub.protocol`).
* ``GET /api/blobs/<sha256>``: one model file that a published record references, with
  ``Range`` support, verified against the record's block hashes as it is sent
  (:mod:`tfhub.server.responses`).
* ``PUT /api/models/<publisher>/<model>/<version>``: publish (body: tar.gz);
  ``POST`` the same path with ``multipart/form-data`` fields ``model`` (file) and ``docs``.
* ``GET /api/models[?q=&publisher=&format=&module_type=]``, ``GET /api/models/<path>``:
  the catalog as JSON (described at ``/openapi.json``).
* ``GET /``: the catalog page with search and filters.

Every response carries a Content-Security-Policy (no inline script or style except the
pages' own, by hash; no framing), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options:
DENY`` and ``Referrer-Policy: no-referrer``. Storage failures answer 503 and any other
failure 500, both as ``{"error": ...}`` JSON without a traceback (which goes to the log).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from tfhub import config, protocol
from tfhub.errors import ModelNameError, PublishError, StorageError
from tfhub.server.catalog import Catalog, ModelName, parse_model_path
from tfhub.server.pages import SECURITY_HEADERS, catalog_page, model_page
from tfhub.server.publish import Publisher, Tokens, Upload, blob_key
from tfhub.server.responses import cache_control, error_response, ranged_response
from tfhub.server.storage import open_storage
from tfhub.version import version

__all__ = ["create_app", "serve"]

access_log = logging.getLogger("tfhub.server.access")
logger = logging.getLogger(__name__)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*", re.ASCII)
_MAX_DOCS_BYTES = 1 << 20
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
    limit = max_upload_bytes or config.max_upload_bytes()
    publisher = Publisher(catalog, max_upload_bytes=limit, inspect_timeout=inspect_timeout)
    grants = tokens if tokens is not None else Tokens.from_env()
    base_url = (public_url or config.public_url() or "http://localhost").rstrip("/")
    app = FastAPI(
        title="tfhub",
        description="A self-hosted TensorFlow Hub: hosting protocol, publishing and catalog.",
        version=version(),
        docs_url=None,
        redoc_url=None,
    )
    app.state.catalog = catalog

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
            request.method,
            request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            response.status_code,
            response.headers.get("content-length", "-"),
            (time.perf_counter() - start) * 1000,
        )
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}  # nothing about paths or configuration

    # -- JSON API ---------------------------------------------------------------------------

    @app.get("/api/models", summary="Search the catalog")
    def list_models(
        q: str | None = None,
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = None,
    ) -> list[dict[str, Any]]:
        return catalog.search(q, publisher, format, module_type)

    @app.get("/api/models/{path:path}", summary="A model (all versions) or one version")
    def get_model(path: str) -> Any:
        try:
            name = parse_model_path(path)
        except ModelNameError as exc:
            return _error(400, str(exc))
        if name.version is not None:
            record = catalog.record(name)
            if record is None:
                return _error(404, f"No model at {name.path}.")
            return record
        versions = catalog.versions(name)
        if not versions:
            return _error(404, f"No model at {name.path}.")
        return {
            "publisher": name.publisher,
            "model": name.model,
            "versions": versions,
            "latest": catalog.record(name),
        }

    async def _receive(request: Request, name: ModelName, docs_field: bool) -> Any:
        grants.check(request.headers.get("authorization"), name.publisher)
        await asyncio.to_thread(publisher.check_absent, name)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + _MAX_DOCS_BYTES:
            raise PublishError(f"The upload exceeds the limit of {limit} bytes.", status=413)
        upload = publisher.new_upload()
        docs = bytearray()
        try:
            if docs_field:
                await _read_multipart(request, upload, docs)
            else:
                async for chunk in request.stream():
                    upload.write(chunk)
            sha256 = upload.finish()
            if upload.size == 0:
                raise PublishError("The upload is empty; send the model's tar.gz.", status=400)
            record = await asyncio.to_thread(
                publisher.publish, name, upload, sha256, docs.decode("utf8") or None
            )
        finally:
            upload.discard()
        return record

    async def _publish(request: Request, path: str, docs_field: bool) -> Response:
        try:
            name = parse_model_path(path)
            if name.version is None:
                raise ModelNameError(
                    f"Publish to /api/models/{path}/<version>: a version is needed."
                )
            record = await _receive(request, name, docs_field)
        except ModelNameError as exc:
            return _error(400, str(exc))
        except PublishError as exc:
            return _error(exc.status or 400, str(exc))
        except UnicodeDecodeError:
            return _error(400, "The docs field must be UTF-8 Markdown.")
        return JSONResponse(record, status_code=201)

    @app.put("/api/models/{path:path}", summary="Publish a version (body: the model's tar.gz)")
    async def put_model(path: str, request: Request) -> Response:
        return await _publish(request, path, docs_field=False)

    @app.post(
        "/api/models/{path:path}",
        summary="Publish a version (multipart: `model` file, optional `docs` Markdown)",
    )
    async def post_model(path: str, request: Request) -> Response:
        return await _publish(request, path, docs_field=True)

    # -- pages and the hosting protocol -----------------------------------------------------

    @app.get("/api/blobs/{sha256}", summary="One model file by its sha256 (Range supported)")
    def get_blob(sha256: str, request: Request) -> Response:
        if not _SHA256_RE.match(sha256):
            return _error(404, "A blob is named by the 64 hex digits of its sha256.")
        blob = catalog.blob(sha256)  # only files that a published record references
        key = blob_key(sha256)
        if blob is None or storage.size(key) is None:
            return _error(404, f"No published file has the sha256 {sha256}.")
        return ranged_response(
            request,
            storage,
            key,
            blob["size"],
            sha256,
            content_type="application/octet-stream",
            immutable=True,
            blob=blob,
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(
        q: str | None = None,
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = None,
    ) -> str:
        return catalog_page(
            catalog.search(q, publisher or None, format or None, module_type or None),
            all_models=catalog.models(),
            q=q,
            publisher=publisher,
            fmt=format,
            module_type=module_type,
        )

    @app.get("/{path:path}", include_in_schema=False)
    def model_or_archive(path: str, request: Request) -> Response:
        try:
            name = parse_model_path(path)
        except ModelNameError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        record = catalog.record(name)
        if record is None:
            return PlainTextResponse(f"No model at /{name.path}.", status_code=404)
        formats = request.query_params.getlist(protocol.FORMAT_PARAM)
        wanted = {f.strip() for value in formats for f in value.split(",")}
        if protocol.COMPRESSED in wanted:
            if record.get("blobs") and protocol.FILES_MEDIA_TYPE in request.headers.get(
                "accept", ""
            ):
                return _files_manifest(record, versioned=name.version is not None)
            archive = record["archive"]
            return ranged_response(
                request,
                storage,
                archive["key"],
                int(archive["size"]),
                archive["sha256"],
                content_type="application/gzip",
                immutable=name.version is not None,
            )
        if protocol.UNCOMPRESSED in wanted:
            return PlainTextResponse(
                "This hub serves tf-hub-format=compressed only (the uncompressed format needs "
                "a gs:// storage); unset TFHUB_MODEL_LOAD_FORMAT.",
                status_code=406,
            )
        if wanted:
            return PlainTextResponse(
                f"Unknown {protocol.FORMAT_PARAM} {sorted(wanted)}; use compressed.",
                status_code=400,
            )
        versions = catalog.versions(ModelName(record["publisher"], record["model"]))
        handle = f"{base_url}/{name.path}"
        return HTMLResponse(model_page(record, versions, handle))

    def _files_manifest(record: dict[str, Any], versioned: bool) -> Response:
        blobs = record["blobs"]
        manifest = protocol.FilesManifest(
            blobs["block_size"],
            tuple(
                protocol.FileEntry(
                    f["path"],
                    f["size"],
                    f["sha256"],
                    f"/api/blobs/{f['sha256']}",
                    tuple(f["blocks"]),
                )
                for f in blobs["files"]
            ),
        )
        return JSONResponse(
            manifest.to_json(),
            media_type=protocol.FILES_MEDIA_TYPE,
            headers={"Vary": "Accept", "Cache-Control": cache_control(versioned)},
        )

    return app


async def _read_multipart(request: Request, upload: Upload, docs: bytearray) -> None:
    """Streams a multipart body: the ``model`` part into ``upload``, ``docs`` into ``docs``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise PublishError(
            "POST a multipart/form-data body with a `model` file (or PUT the tar.gz).",
            status=415,
        )
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "name": None}
    errors: list[PublishError] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disposition.get(b"name", b"").decode()
        state["headers"] = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if errors:
            return
        try:
            if state["name"] == "model":
                upload.write(data[start:end])
            elif state["name"] == "docs":
                docs.extend(data[start:end])
                if len(docs) > _MAX_DOCS_BYTES:
                    raise PublishError("The docs field exceeds 1 MiB.", status=413)
        except PublishError as exc:
            errors.append(exc)

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if errors:
                raise errors[0]
        parser.finalize()
    except MultipartParseError as exc:
        raise PublishError(f"Malformed multipart body: {exc}", status=400) from exc
    if upload.size == 0:
        raise PublishError("The multipart body has no `model` file part.", status=400)


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
