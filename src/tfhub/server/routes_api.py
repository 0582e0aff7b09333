"""The JSON API of the catalog: ``GET /api/models`` (search) and ``GET /api/models/<path>``.

Search: full text (``q``: every word, as a prefix, over names, titles, descriptions, docs,
module type, architecture, dataset, language and license), facet filters, ``sort``
(relevance, recent, downloads, name) and pages (``page``, ``per_page`` up to 100). The
answer holds the page's ``items`` (each the latest record of a model plus ``versions``,
``latest_version``, ``downloads``, ``size``), the ``total``, the number of ``pages`` and the
``facets`` with their counts over every match. Described at ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tfhub.errors import ModelNameError
from tfhub.server.access import ReadScope, scope_dependency
from tfhub.server.catalog import ModelName, parse_model_path
from tfhub.server.db.queries import MAX_PER_PAGE
from tfhub.server.hub import Hub
from tfhub.server.responses import error_response as _error

__all__ = ["register"]


class FacetCount(BaseModel):
    value: str
    count: int


class SearchItem(BaseModel):
    """The latest readable record of a model (every field of the record), plus four keys."""

    model_config = ConfigDict(extra="allow")
    publisher: str
    model: str
    version: int
    handle: str
    format: str
    versions: list[int]
    latest_version: int
    downloads: int = Field(description="downloads of every version, all time")
    size: int = Field(description="bytes of the latest version's files (else its archive)")


class SearchPage(BaseModel):
    items: list[SearchItem]
    total: int
    page: int
    per_page: int
    pages: int
    sort: str
    facets: dict[str, list[FacetCount]]


class Downloads(BaseModel):
    total: int
    last_30_days: int
    by_version: dict[str, int]
    by_day: list[tuple[str, int]]


class ModelSummary(BaseModel):
    publisher: str
    model: str
    versions: list[int]
    latest: dict[str, Any]
    downloads: Downloads


_ITEM = {
    "publisher": "google",
    "model": "imagenet/mobilenet_v2/feature_vector",
    "version": 2,
    "handle": "google/imagenet/mobilenet_v2/feature_vector/2",
    "format": "saved_model_2",
    "docs": {"title": "MobileNet V2", "description": "Image features.", "metadata": {}},
    "published_at": "2026-11-27T12:00:00+00:00",
    "versions": [1, 2],
    "latest_version": 2,
    "downloads": 1234,
    "size": 9_412_345,
}
_SEARCH_EXAMPLE = {
    "items": [_ITEM],
    "total": 1,
    "page": 1,
    "per_page": 20,
    "pages": 1,
    "sort": "relevance",
    "facets": {
        "publisher": [{"value": "google", "count": 1}],
        "format": [{"value": "saved_model_2", "count": 1}],
        "module_type": [{"value": "image-feature-vector", "count": 1}],
        "license": [{"value": "apache-2.0", "count": 1}],
        "language": [],
        "dataset": [{"value": "imagenet-ilsvrc-2012-cls", "count": 1}],
        "architecture": [{"value": "mobilenet-v2", "count": 1}],
    },
}
_MODEL_EXAMPLE = {
    "publisher": "google",
    "model": "imagenet/mobilenet_v2/feature_vector",
    "versions": [1, 2],
    "latest": {k: v for k, v in _ITEM.items() if k not in ("versions", "latest_version")},
    "downloads": {
        "total": 1234,
        "last_30_days": 56,
        "by_version": {"1": 1000, "2": 234},
        "by_day": [["2026-11-26", 40], ["2026-11-27", 16]],
    },
}


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the catalog's JSON routes to ``app``."""
    catalog = hub.catalog
    read_scope = scope_dependency(hub.grants)

    @app.get(
        "/api/models",
        summary="Search the catalog",
        response_model=None,
        responses={
            200: {
                "model": SearchPage,
                "content": {"application/json": {"example": _SEARCH_EXAMPLE}},
            }
        },
    )
    def list_models(
        q: str | None = Query(None, description="words to find (each as a prefix)"),
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = Query(None, description="module type or task"),
        license: str | None = None,
        language: str | None = None,
        dataset: str | None = None,
        architecture: str | None = None,
        sort: Literal["relevance", "recent", "downloads", "name"] = "relevance",
        page: int = Query(1, ge=1),
        per_page: int = Query(20, ge=1, le=MAX_PER_PAGE),
        scope: ReadScope = Depends(read_scope),
    ) -> Any:
        filters = {
            "license": license,
            "language": language,
            "dataset": dataset,
            "architecture": architecture,
        }
        return JSONResponse(
            catalog.search(
                q,
                publisher,
                format,
                module_type,
                filters=filters,
                sort=sort,
                page=page,
                per_page=per_page,
                scope=scope,
            )
        )

    @app.get(
        "/api/models/{path:path}",
        summary="A model (all versions) or one version",
        response_model=None,
        responses={
            200: {
                "description": "``/<publisher>/<model>``: the model; with ``/<version>``: "
                "that version's record",
                "model": ModelSummary,
                "content": {"application/json": {"example": _MODEL_EXAMPLE}},
            },
            404: {"description": "no such model or version (or not readable)"},
        },
    )
    def get_model(path: str, scope: ReadScope = Depends(read_scope)) -> Any:
        try:
            name = parse_model_path(path)
        except ModelNameError as exc:
            return _error(400, str(exc))
        if name.version is not None:
            record = catalog.record(name, scope)
            if record is None:
                return _error(404, f"No model at {name.path}.")
            return record
        versions = catalog.versions(name, scope)
        if not versions:
            return _error(404, f"No model at {name.path}.")
        return {
            "publisher": name.publisher,
            "model": name.model,
            "versions": versions,
            "latest": catalog.record(ModelName(name.publisher, name.model, versions[-1]), scope),
            "downloads": catalog.downloads(name, scope),
        }
