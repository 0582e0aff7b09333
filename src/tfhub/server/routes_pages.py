"""The catalog page (``GET /``): search, facets with counts, sort, pagination. Model pages
are answered by :mod:`tfhub.server.routes_files` (a model's URL is both its page and its
download)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from tfhub.server.access import ReadScope, scope_dependency, visible_models
from tfhub.server.hub import Hub
from tfhub.server.pages import FACETS, SORTS, CatalogQuery, catalog_page

__all__ = ["PER_PAGE", "facet_counts", "register", "sort_models"]

PER_PAGE = 20


def _facet_values(model: dict[str, Any], key: str) -> list[str]:
    meta = (model.get("docs") or {}).get("metadata", {})
    if key == "publisher":
        return [model["publisher"]]
    if key == "format":
        return [model["format"]]
    if key == "license":
        return list(meta.get("license", []))
    return list(meta.get("module-type", [])) + list(meta.get("task", []))


def facet_counts(models: list[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Per facet of :data:`FACETS`: its values among ``models``, most frequent first."""
    counts = {key: Counter[str]() for key in FACETS}
    for model in models:
        for key, counter in counts.items():
            counter.update(set(_facet_values(model, key)))
    return {
        key: sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        for key, counter in counts.items()
    }


def sort_models(models: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """``models`` in the order ``sort`` names (relevance keeps the search's order)."""
    if sort == "name":
        return sorted(models, key=lambda m: (m["publisher"], m["model"]))
    if sort == "recent":
        return sorted(models, key=lambda m: str(m.get("published_at", "")), reverse=True)
    if sort == "downloads":
        return sorted(models, key=lambda m: -int(m.get("downloads") or 0))
    return models


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the catalog page to ``app``."""
    catalog = hub.catalog
    read_scope = scope_dependency(hub.grants)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(
        q: str | None = None,
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = None,
        license: str | None = None,
        sort: str | None = None,
        page: str | None = None,
        scope: ReadScope = Depends(read_scope),
    ) -> str:
        found = catalog.search(q, publisher or None, format or None, module_type or None)
        found = visible_models(found, catalog.all_records(), scope)
        if license:
            found = [m for m in found if license in _facet_values(m, "license")]
        order = sort if sort in SORTS else "relevance"
        number = int(page) if page and page.isdigit() and 0 < int(page) < 10**6 else 1
        filters = {"publisher": publisher, "module_type": module_type, "format": format,
                   "license": license}  # fmt: skip
        query = CatalogQuery(
            q=q or "",
            filters={k: v for k, v in filters.items() if v},
            sort=order,
            page=number,
        )
        ordered = sort_models(found, order)
        start = (number - 1) * PER_PAGE
        return catalog_page(
            ordered[start : start + PER_PAGE],
            query=query,
            facets=facet_counts(found),
            total=len(found),
            per_page=PER_PAGE,
        )
