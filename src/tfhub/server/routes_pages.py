"""The catalog page (``GET /``): search, facets with counts, sort, pagination, all answered
by the catalog database (:meth:`tfhub.server.catalog.Catalog.search`). Model pages are
answered by :mod:`tfhub.server.routes_files` (a model's URL is both its page and its
download)."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from tfhub.server.access import ReadScope, scope_dependency
from tfhub.server.db.queries import SORTS
from tfhub.server.hub import Hub
from tfhub.server.pages import FACETS, CatalogQuery, catalog_page

__all__ = ["PER_PAGE", "register"]

PER_PAGE = 20
_MAX_PAGE = 10**6


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
        language: str | None = None,
        dataset: str | None = None,
        architecture: str | None = None,
        sort: str | None = None,
        page: str | None = None,
        scope: ReadScope = Depends(read_scope),
    ) -> str:
        order = sort if sort in SORTS else "relevance"
        number = int(page) if page and page.isdigit() and 0 < int(page) < _MAX_PAGE else 1
        chosen = {"publisher": publisher, "format": format, "module_type": module_type,
                  "license": license, "language": language, "dataset": dataset,
                  "architecture": architecture}  # fmt: skip
        filters = {k: v for k, v in chosen.items() if v}
        found = catalog.search(
            q, filters=filters, sort=order, page=number, per_page=PER_PAGE, scope=scope
        )
        facets = {
            kind: [(str(f["value"]), int(f["count"])) for f in values]
            for kind, values in found["facets"].items()
            if kind in FACETS
        }
        return catalog_page(
            found["items"],
            query=CatalogQuery(q=q or "", filters=filters, sort=order, page=number),
            facets=facets,
            total=int(found["total"]),
            per_page=PER_PAGE,
        )
