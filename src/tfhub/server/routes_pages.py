"""The catalog page (``GET /``); model pages are answered by :mod:`tfhub.server.routes_files`
(a model's URL is both its page and its download)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from tfhub.server.hub import Hub
from tfhub.server.pages import catalog_page

__all__ = ["register"]


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the catalog page to ``app``."""
    catalog = hub.catalog

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
