"""What every route of the hub shares: the storage, the catalog and the publishing set-up."""

from __future__ import annotations

from dataclasses import dataclass

from tfhub.server.catalog import Catalog
from tfhub.server.publish import Publisher, Tokens
from tfhub.server.storage import Storage

__all__ = ["Hub"]


@dataclass(frozen=True)
class Hub:
    """One hub's state, built once by :func:`tfhub.server.app.create_app`.

    Attributes:
        storage: the source of truth (a directory or a bucket).
        catalog: the index of the records in ``storage``.
        publisher: stores and validates uploads.
        grants: who may publish.
        max_upload_bytes: the largest accepted upload.
        base_url: the hub's URL as users reach it (page snippets), without a trailing '/'.
    """

    storage: Storage
    catalog: Catalog
    publisher: Publisher
    grants: Tokens
    max_upload_bytes: int
    base_url: str
