"""The catalog page (``GET /``); model pages are answered by :mod:`tfhub.server.routes_files`
(a model's URL is both its page and its download)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from tfhub.server.access import ReadScope
from tfhub.server.db.queries import MAX_PER_PAGE, SORTS
from tfhub.server.hub import Hub
from tfhub.server.pages import catalog_page

__all__ = ["register"]

PER_PAGE = 24


def _facet_options(facets: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The filter menus' values, from the search's facets, in the shape ``catalog_page``
    reads them (a publisher, a format and module types per entry)."""
    values = {kind: [f["value"] for f in facets.get(kind, [])] for kind in facets}
    count = max([len(v) for v in values.values()] + [0])

    def at(kind: str, i: int) -> str | None:
        return values.get(kind, [])[i] if i < len(values.get(kind, [])) else None

    return [
        {
            "publisher": at("publisher", i) or values["publisher"][0],
            "format": at("format", i) or values["format"][0],
            "docs": {"metadata": {"module-type": [t] if (t := at("module_type", i)) else []}},
        }
        for i in range(count)
        if values.get("publisher") and values.get("format")
    ]


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the catalog page to ``app``."""
    catalog = hub.catalog

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(
        q: str | None = None,
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = None,
        sort: str = "relevance",
        page: int = 1,
        per_page: int = PER_PAGE,
    ) -> str:
        scope = ReadScope()  # the request's scope: wired by the access layer
        found = catalog.search(
            q,
            publisher or None,
            format or None,
            module_type or None,
            sort=sort if sort in SORTS else "relevance",
            page=max(page, 1),
            per_page=min(max(per_page, 1), MAX_PER_PAGE),
            scope=scope,
        )
        return catalog_page(
            found["items"],
            # The menus offer every value (the facets of everything, counted once per change).
            all_models=_facet_options(catalog.search(per_page=1, scope=scope)["facets"]),
            q=q,
            publisher=publisher,
            fmt=format,
            module_type=module_type,
        )
