"""The catalog page (``GET /``); model pages are answered by :mod:`tfhub.server.routes_files`
(a model's URL is both its page and its download)."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from tfhub.server.access import ReadScope, scope_dependency, visible_models
from tfhub.server.hub import Hub
from tfhub.server.pages import catalog_page

__all__ = ["register"]


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
        scope: ReadScope = Depends(read_scope),
    ) -> str:
        found = catalog.search(q, publisher or None, format or None, module_type or None)
        records = catalog.all_records()
        return catalog_page(
            visible_models(found, records, scope),
            all_models=visible_models(catalog.models(), records, scope),
            q=q,
            publisher=publisher,
            fmt=format,
            module_type=module_type,
        )
