"""The hosting protocol: model URLs (archive, fast-path manifest or page) and blobs.

* ``GET /<publisher>/<model>[/<version>]?tf-hub-format=compressed``: the model's tar.gz,
  streamed from storage, with ``Content-Length``, ``ETag``, ``Range`` support and a sha256
  digest. Without the query parameter: the model page. ``/<publisher>/<model>`` is the latest.
  With ``Accept: application/vnd.tfhub.files+json`` (tfhub clients): the manifest of the
  model's files instead (the fast path, see :mod:`tfhub.protocol`).
* ``GET /api/blobs/<sha256>``: one model file that a published record references, with
  ``Range`` support, verified against the record's block hashes as it is sent
  (:mod:`tfhub.server.responses`). ``?name=<file name>`` adds a ``Content-Disposition:
  attachment`` with that name, reduced to safe characters (the model page's file links).
* A browser (``Accept: text/html``) asking for a model that does not exist gets the HTML
  404 page; other clients get the message as plain text (both status 404).

Download counts (:meth:`Catalog.count_download`): an archive counts once when the last byte
of the file has been handed to the server (a whole ``GET``, or the ``Range`` that ends the
file: a resumed download counts once, a range that stops short does not count, nor does a
download cut before its end); the fast path counts once per manifest fetch (its blobs do
not count).

Archives and blobs may leave off the Python path (``TFHUB_ACCEL_REDIRECT`` behind nginx,
``TFHUB_REDIRECT_DOWNLOADS`` on S3; :class:`~tfhub.server.responses.Delivery`): the checks
(name, record, existence) stay here, only the bytes are handed over. Such a download is
counted when it is handed over (a request from the first byte): the hub never sees it
complete.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.responses import StreamingResponse

from tfhub import protocol
from tfhub.errors import ModelNameError
from tfhub.server.access import ReadScope, cache_privately, scope_dependency
from tfhub.server.catalog import ModelName, parse_model_path
from tfhub.server.head import HEAD_FLAG
from tfhub.server.hub import Hub
from tfhub.server.pages import model_page, not_found_page
from tfhub.server.publish import blob_key
from tfhub.server.responses import Delivery, Served, cache_control, deliver
from tfhub.server.responses import error_response as _error

__all__ = ["register_blobs", "register_models"]

_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_UNSAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+", re.ASCII)


def download_name(name: str) -> str | None:
    """``name`` as a safe attachment file name: its last path part, only ``[A-Za-z0-9._-]``
    (others become ``_``), no leading dot, at most 120 characters; None if nothing is left."""
    base = _UNSAFE_NAME_RE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = base.lstrip(".")[:120]
    return base if base.strip("_") else None


def not_found(request: Request, message: str) -> Response:
    """404: the HTML page for browsers, plain text for every other client."""
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(not_found_page(message), status_code=404)
    return PlainTextResponse(message, status_code=404)


def register_blobs(app: FastAPI, hub: Hub) -> None:
    """Adds ``GET /api/blobs/<sha256>`` to ``app``."""
    storage, catalog = hub.storage, hub.catalog
    read_scope = scope_dependency(hub.grants)
    delivery = Delivery.from_config(storage)

    @app.get("/api/blobs/{sha256}", summary="One model file by its sha256 (Range supported)")
    def get_blob(sha256: str, request: Request, scope: ReadScope = Depends(read_scope)) -> Response:
        if not _SHA256_RE.match(sha256):
            return _error(404, "A blob is named by the 64 hex digits of its sha256.")
        blob = catalog.blob(sha256, scope)  # only files a record the scope may read references
        key = blob_key(sha256)
        if blob is None or storage.size(key) is None:
            return _error(404, f"No published file has the sha256 {sha256}.")
        served = Served(
            key, blob["size"], sha256, "application/octet-stream", immutable=True, blob=blob
        )
        response = deliver(request, storage, delivery, served)
        filename = download_name(request.query_params.get("name", ""))
        if filename:
            response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        # public: an anonymous reader gets it too (without a grant, that is this very lookup)
        anonymous = scope.anonymous
        public = scope == anonymous or catalog.blob(sha256, anonymous) is not None
        return cache_privately(response, public)


def register_models(app: FastAPI, hub: Hub) -> None:
    """Adds the catch-all model route to ``app``: register it last."""
    storage, catalog, base_url = hub.storage, hub.catalog, hub.base_url
    read_scope = scope_dependency(hub.grants)
    delivery = Delivery.from_config(storage)

    @app.get("/{path:path}", include_in_schema=False)
    def model_or_archive(
        path: str, request: Request, scope: ReadScope = Depends(read_scope)
    ) -> Response:
        try:
            name = parse_model_path(path)
        except ModelNameError as exc:
            return not_found(request, str(exc))
        record = catalog.record(name, scope)
        if record is None:
            return not_found(request, f"No model at /{name.path}.")
        exact = ModelName(record["publisher"], record["model"], record["version"])
        formats = request.query_params.getlist(protocol.FORMAT_PARAM)
        wanted = {f.strip() for value in formats for f in value.split(",")}
        if protocol.COMPRESSED in wanted:
            public = scope.anonymous.allows(record)  # else: no shared cache may keep it
            if record.get("blobs") and protocol.FILES_MEDIA_TYPE in request.headers.get(
                "accept", ""
            ):
                if not request.scope.get(HEAD_FLAG):  # a HEAD is no download
                    catalog.count_download(exact)
                manifest = _files_manifest(record, versioned=name.version is not None)
                return cache_privately(manifest, public)
            archive = record["archive"]
            size = int(archive["size"])
            if (
                delivery.redirects
                and not request.scope.get(HEAD_FLAG)
                and request.headers.get("range", "bytes=0-").strip().startswith("bytes=0-")
            ):  # handed over off the Python path: a new download, not a resumption of one
                catalog.count_download(exact)
            served = Served(
                archive["key"],
                size,
                archive["sha256"],
                "application/gzip",
                immutable=name.version is not None,
            )
            response = deliver(request, storage, delivery, served)
            if not delivery.redirects and _ends_file(response, size):
                assert isinstance(response, StreamingResponse)
                response.body_iterator = _then(
                    response.body_iterator, lambda: catalog.count_download(exact)
                )
            return cache_privately(response, public)
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
        versions = catalog.versions(ModelName(record["publisher"], record["model"]), scope)
        handle = f"{base_url}/{name.path}"
        downloads = catalog.downloads(ModelName(record["publisher"], record["model"]), scope)
        return HTMLResponse(model_page(record, versions, handle, downloads=downloads))

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


def _ends_file(response: Response, size: int) -> bool:
    """Whether ``response`` streams the archive's last byte (whole, or a range to its end)."""
    if not isinstance(response, StreamingResponse) or response.status_code not in (200, 206):
        return False
    content_range = response.headers.get("content-range")
    if response.status_code == 200 or content_range is None:
        return True
    return content_range.split("/")[0].endswith(f"-{size - 1}")


async def _then(body: AsyncIterable[Any], done: Callable[[], None]) -> AsyncIterator[Any]:
    """``body``, then ``done()`` once its last chunk has been taken (sent): not when the
    client goes away before."""
    async for chunk in body:
        yield chunk
    done()
