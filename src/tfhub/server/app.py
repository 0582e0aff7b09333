"""The hub server: hosting protocol, publishing API, JSON API and HTML pages (FastAPI).

Routes:

* ``GET /<publisher>/<model>[/<version>]?tf-hub-format=compressed``: the model's tar.gz,
  streamed from storage, with ``Content-Length``, ``ETag``, ``Range`` support and a sha256
  digest. Without the query parameter: the model page. ``/<publisher>/<model>`` is the latest.
  With ``Accept: application/vnd.tfhub.files+json`` (tfhub clients): the manifest of the
  model's files instead (the fast path, see :mod:`tfhub.protocol`).
* ``GET /api/blobs/<sha256>``: one model file, with ``Range`` support.
* ``PUT /api/models/<publisher>/<model>/<version>``: publish (body: tar.gz);
  ``POST`` the same path with ``multipart/form-data`` fields ``model`` (file) and ``docs``.
* ``GET /api/models[?q=&publisher=&format=&module_type=]``, ``GET /api/models/<path>``:
  the catalog as JSON (described at ``/openapi.json``).
* ``GET /``: the catalog page with search and filters.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.responses import StreamingResponse

from tfhub import __version__, protocol
from tfhub.server.catalog import Catalog, ModelName, NameError_, parse_model_path
from tfhub.server.pages import catalog_page, model_page
from tfhub.server.publish import Publisher, PublishError, Tokens, Upload, blob_key
from tfhub.server.storage import open_storage

__all__ = ["create_app"]

access_log = logging.getLogger("tfhub.server.access")
logger = logging.getLogger(__name__)
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _cache_control(immutable: bool) -> str:
    return "public, max-age=31536000, immutable" if immutable else "no-cache"


_MAX_DOCS_BYTES = 1 << 20


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def create_app(
    root: str,
    *,
    tokens: Tokens | None = None,
    max_upload_bytes: int | None = None,
    inspect_timeout: float = 600.0,
) -> FastAPI:
    """The ASGI application over the storage at ``root`` (a directory or ``s3://bucket/...``).

    Args:
        root: the storage; the source of truth for everything the server shows.
        tokens: who may publish (default: from ``TFHUB_PUBLISH_TOKEN`` / ``TFHUB_TOKEN_FILE``).
        max_upload_bytes: largest accepted upload (default ``TFHUB_MAX_UPLOAD_BYTES`` or 8 GiB).
        inspect_timeout: seconds allowed to load and inspect an uploaded model.
    """
    storage = open_storage(root)
    catalog = Catalog(storage)
    limit = max_upload_bytes or int(os.environ.get("TFHUB_MAX_UPLOAD_BYTES", 8 << 30))
    publisher = Publisher(catalog, max_upload_bytes=limit, inspect_timeout=inspect_timeout)
    grants = tokens if tokens is not None else Tokens.from_env()
    app = FastAPI(
        title="tfhub",
        description="A self-hosted TensorFlow Hub: hosting protocol, publishing and catalog.",
        version=__version__,
        docs_url=None,
        redoc_url=None,
    )
    app.state.catalog = catalog

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
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
        return {"status": "ok", "storage": storage.describe()}

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
        except NameError_ as exc:
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
            raise PublishError(413, f"The upload exceeds the limit of {limit} bytes.")
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
                raise PublishError(400, "The upload is empty; send the model's tar.gz.")
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
                raise NameError_(f"Publish to /api/models/{path}/<version>: a version is needed.")
            record = await _receive(request, name, docs_field)
        except NameError_ as exc:
            return _error(400, str(exc))
        except PublishError as exc:
            return _error(exc.status, exc.message)
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
        key = blob_key(sha256)
        size = storage.size(key)
        if size is None:
            return _error(404, f"No blob {sha256}.")
        return _ranged_response(
            request, key, size, sha256, content_type="application/octet-stream", immutable=True
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
        except NameError_ as exc:
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
            return _ranged_response(
                request,
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
        handle = str(request.base_url).rstrip("/") + "/" + name.path
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
            headers={"Vary": "Accept", "Cache-Control": _cache_control(versioned)},
        )

    def _ranged_response(
        request: Request, key: str, size: int, sha256: str, *, content_type: str, immutable: bool
    ) -> Response:
        etag = f'"{sha256}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Type": content_type,
            "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(sha256)).decode(),
            protocol.SHA256_HEADER: sha256,
            "Cache-Control": _cache_control(immutable),
            "Vary": "Accept",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        start, end, status = 0, size - 1, 200
        range_header = request.headers.get("range")
        if range_header and request.headers.get("if-range", etag) == etag:
            match = _RANGE_RE.match(range_header.strip())
            if match and (match[1] or match[2]):
                if match[1]:
                    start = int(match[1])
                    end = min(int(match[2]), size - 1) if match[2] else size - 1
                else:  # a suffix: the last N bytes
                    start = max(size - int(match[2]), 0)
                if start > end or start >= size:
                    return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        if start > end:  # an empty file
            return Response(status_code=status, headers=headers)
        body: Iterator[bytes] = storage.iter_range(key, start, end)
        return StreamingResponse(body, status_code=status, headers=headers)

    return app


async def _read_multipart(request: Request, upload: Upload, docs: bytearray) -> None:
    """Streams a multipart body: the ``model`` part into ``upload``, ``docs`` into ``docs``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise PublishError(
            415, "POST a multipart/form-data body with a `model` file (or PUT the tar.gz)."
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
                    raise PublishError(413, "The docs field exceeds 1 MiB.")
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
        raise PublishError(400, f"Malformed multipart body: {exc}") from exc
    if upload.size == 0:
        raise PublishError(400, "The multipart body has no `model` file part.")


def serve(root: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Runs the server with uvicorn until interrupted (``tfhub serve``).

    Prints ``tfhub serving <root> at http://<host>:<port>`` once listening (with the real
    port when ``port`` is 0).
    """
    import socket

    import uvicorn

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tfhub.server").setLevel(logging.INFO)  # the access log
    app = create_app(root)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    bound = sock.getsockname()[1]
    print(f"tfhub serving {root} at http://{host}:{bound}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,  # keep our logging set-up (uvicorn's would replace the handlers)
            log_level="info",
            access_log=False,  # ours logs method, path, status, bytes and time
            timeout_keep_alive=5,
            limit_concurrency=256,
        )
    )
    server.run(sockets=[sock])
