"""Publishing: ``PUT /api/models/<publisher>/<model>/<version>`` (body: the tar.gz) and
``POST`` the same path with ``multipart/form-data`` fields ``model`` (file), ``docs`` and
``provenance`` (JSON, :mod:`tfhub.server.provenance`; set by ``tfhub mirror pull``).

``?private=true`` (or the multipart field ``private`` = ``true``) publishes a private version:
only tokens with a read grant for it can see it (:mod:`tfhub.server.access`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from tfhub.errors import ModelNameError, PublishError
from tfhub.server.catalog import ModelName, parse_model_path
from tfhub.server.hub import Hub
from tfhub.server.provenance import MAX_PROVENANCE_BYTES, parse_provenance
from tfhub.server.publish import Upload
from tfhub.server.responses import error_response as _error

__all__ = ["register"]

_MAX_DOCS_BYTES = 1 << 20
_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


def _private(value: str | bytes, where: str) -> bool:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    flag = _FLAGS.get(text.strip().lower())
    if flag is None:
        raise PublishError(f"{where} must be true or false, not {text[:20]!r}.", status=400)
    return flag


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the publishing routes to ``app``."""
    publisher, grants, limit = hub.publisher, hub.grants, hub.max_upload_bytes

    async def _receive(request: Request, name: ModelName, docs_field: bool) -> Any:
        grants.check(request.headers.get("authorization"), name.publisher)
        asked = _private(request.query_params.get("private", ""), "The query parameter private")
        await asyncio.to_thread(publisher.check_absent, name)
        declared = request.headers.get("content-length")
        extra = _MAX_DOCS_BYTES + MAX_PROVENANCE_BYTES
        if declared and declared.isdigit() and int(declared) > limit + extra:
            raise PublishError(f"The upload exceeds the limit of {limit} bytes.", status=413)
        upload = publisher.new_upload()
        docs, origin, private = bytearray(), bytearray(), bytearray()
        try:
            if docs_field:
                await _read_multipart(request, upload, docs, origin, private)
            else:
                async for chunk in request.stream():
                    upload.write(chunk)
            sha256 = upload.finish()
            if upload.size == 0:
                raise PublishError("The upload is empty; send the model's tar.gz.", status=400)
            provenance = parse_provenance(origin.decode("utf8")) if origin else None
            private_flag = _private(bytes(private), "The multipart field private") or asked
            record = await asyncio.to_thread(
                publisher.publish,
                name,
                upload,
                sha256,
                docs.decode("utf8") or None,
                provenance=provenance,
                private=private_flag,
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
            return _error(400, "The docs and provenance fields must be UTF-8 text.")
        return JSONResponse(record, status_code=201)

    @app.put("/api/models/{path:path}", summary="Publish a version (body: the model's tar.gz)")
    async def put_model(path: str, request: Request) -> Response:
        return await _publish(request, path, docs_field=False)

    @app.post(
        "/api/models/{path:path}",
        summary="Publish a version (multipart: `model` file, optional `docs` Markdown and "
        "`provenance` JSON)",
    )
    async def post_model(path: str, request: Request) -> Response:
        return await _publish(request, path, docs_field=True)


async def _read_multipart(
    request: Request, upload: Upload, docs: bytearray, provenance: bytearray, private: bytearray
) -> None:
    """Streams a multipart body: the ``model`` part into ``upload``, ``docs`` into ``docs``,
    ``provenance`` into ``provenance``, ``private`` into ``private``."""
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
            elif state["name"] == "provenance":
                provenance.extend(data[start:end])
                if len(provenance) > MAX_PROVENANCE_BYTES:
                    raise PublishError("The provenance field exceeds 1 MiB.", status=413)
            elif state["name"] == "private":
                private.extend(data[start:end])
                if len(private) > 16:
                    raise PublishError("The private field must be true or false.", status=400)
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
