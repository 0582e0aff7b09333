"""The hosting protocol: model URLs (archive, fast-path manifest or page) and blobs.

* ``GET /<publisher>/<model>[/<version>]?tf-hub-format=compressed``: the model's tar.gz,
  streamed from storage, with ``Content-Length``, ``ETag``, ``Range`` support and a sha256
  digest. Without the query parameter: the model page. ``/<publisher>/<model>`` is the latest.
  With ``Accept: application/vnd.tfhub.files+json`` (tfhub clients): the manifest of the
  model's files instead (the fast path, see :mod:`tfhub.protocol`).
* ``GET /api/blobs/<sha256>``: one model file that a published record references, with
  ``Range`` support, verified against the record's block hashes as it is sent
  (:mod:`tfhub.server.responses`).

Archives and blobs may leave off the Python path (``TFHUB_ACCEL_REDIRECT`` behind nginx,
``TFHUB_REDIRECT_DOWNLOADS`` on S3; :class:`~tfhub.server.responses.Delivery`): the checks
(name, record, existence) stay here, only the bytes are handed over. Such a download is
counted when it is handed over (:func:`_handed_over`): the hub never sees it complete.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from tfhub import protocol
from tfhub.errors import ModelNameError
from tfhub.server.catalog import ModelName, parse_model_path
from tfhub.server.hub import Hub
from tfhub.server.pages import model_page
from tfhub.server.publish import blob_key
from tfhub.server.responses import Delivery, Served, cache_control, deliver
from tfhub.server.responses import error_response as _error

__all__ = ["register_blobs", "register_models"]

_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def register_blobs(app: FastAPI, hub: Hub) -> None:
    """Adds ``GET /api/blobs/<sha256>`` to ``app``."""
    storage, catalog = hub.storage, hub.catalog
    delivery = Delivery.from_config(storage)

    @app.get("/api/blobs/{sha256}", summary="One model file by its sha256 (Range supported)")
    def get_blob(sha256: str, request: Request) -> Response:
        if not _SHA256_RE.match(sha256):
            return _error(404, "A blob is named by the 64 hex digits of its sha256.")
        blob = catalog.blob(sha256)  # only files that a published record references
        key = blob_key(sha256)
        if blob is None or storage.size(key) is None:
            return _error(404, f"No published file has the sha256 {sha256}.")
        served = Served(
            key, blob["size"], sha256, "application/octet-stream", immutable=True, blob=blob
        )
        return deliver(request, storage, delivery, served)


def register_models(app: FastAPI, hub: Hub) -> None:
    """Adds the catch-all model route to ``app``: register it last."""
    storage, catalog, base_url = hub.storage, hub.catalog, hub.base_url
    delivery = Delivery.from_config(storage)

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
            if delivery.redirects and request.headers.get("range", "bytes=0-").strip().startswith(
                "bytes=0-"
            ):  # a new download, not the resumption of one
                _handed_over(hub, record)
            served = Served(
                archive["key"],
                int(archive["size"]),
                archive["sha256"],
                "application/gzip",
                immutable=name.version is not None,
            )
            return deliver(request, storage, delivery, served)
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


def _handed_over(hub: Hub, record: dict[str, Any]) -> None:
    """The one place where a download answered off the Python path (nginx or a presigned
    URL) is counted: at the hand-over, since its completion is never seen here."""
    count = getattr(hub.catalog, "count_download", None)  # the catalog's download counts
    if count is not None:
        count(ModelName(record["publisher"], record["model"], int(record["version"])))
