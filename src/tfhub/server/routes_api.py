"""The JSON API of the catalog: ``GET /api/models`` (search) and ``GET /api/models/<path>``."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from tfhub.errors import ModelNameError
from tfhub.server.access import (
    ReadScope,
    scope_dependency,
    visible_models,
    visible_record,
    visible_versions,
)
from tfhub.server.catalog import parse_model_path
from tfhub.server.hub import Hub
from tfhub.server.responses import error_response as _error

__all__ = ["register"]


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the catalog's JSON routes to ``app``."""
    catalog = hub.catalog
    read_scope = scope_dependency(hub.grants)

    @app.get("/api/models", summary="Search the catalog")
    def list_models(
        q: str | None = None,
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = None,
        scope: ReadScope = Depends(read_scope),
    ) -> list[dict[str, Any]]:
        found = catalog.search(q, publisher, format, module_type)
        return visible_models(found, catalog.all_records(), scope)

    @app.get("/api/models/{path:path}", summary="A model (all versions) or one version")
    def get_model(path: str, scope: ReadScope = Depends(read_scope)) -> Any:
        try:
            name = parse_model_path(path)
        except ModelNameError as exc:
            return _error(400, str(exc))
        record = visible_record(catalog, name, scope)
        if record is None:
            return _error(404, f"No model at {name.path}.")
        if name.version is not None:
            return record
        return {
            "publisher": name.publisher,
            "model": name.model,
            "versions": visible_versions(catalog.all_records(), name.publisher, name.model, scope),
            "latest": record,
        }
