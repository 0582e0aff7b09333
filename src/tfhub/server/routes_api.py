"""The JSON API of the catalog: ``GET /api/models`` (search) and ``GET /api/models/<path>``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tfhub.errors import ModelNameError
from tfhub.server.catalog import parse_model_path
from tfhub.server.hub import Hub
from tfhub.server.responses import error_response as _error

__all__ = ["register"]


def register(app: FastAPI, hub: Hub) -> None:
    """Adds the catalog's JSON routes to ``app``."""
    catalog = hub.catalog

    @app.get("/api/models", summary="Search the catalog")
    def list_models(
        q: str | None = None,
        publisher: str | None = None,
        format: str | None = None,
        module_type: str | None = None,
    ) -> list[dict[str, Any]]:
        return catalog.search(q, publisher, format, module_type)

    @app.get("/api/models/{path:path}", summary="A model (all versions) or one version")
    def get_model(path: str) -> Any:
        try:
            name = parse_model_path(path)
        except ModelNameError as exc:
            return _error(400, str(exc))
        if name.version is not None:
            record = catalog.record(name)
            if record is None:
                return _error(404, f"No model at {name.path}.")
            return record
        versions = catalog.versions(name)
        if not versions:
            return _error(404, f"No model at {name.path}.")
        return {
            "publisher": name.publisher,
            "model": name.model,
            "versions": versions,
            "latest": catalog.record(name),
        }
