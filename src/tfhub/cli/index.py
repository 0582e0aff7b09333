"""``tfhub index``: the hub's catalog database (``tfhub index rebuild --root ROOT``)."""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["add_commands"]


def add_commands(sub: Any, add: Any) -> None:
    """Adds the ``index`` command group to the ``tfhub`` parser."""
    p = add(sub, "index", help="the hub's catalog database (an index of the storage)")
    index_sub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    rebuild = add(
        index_sub,
        "rebuild",
        help="re-read every record of the storage into the catalog database "
        "(TFHUB_DATABASE_URL, else SQLite next to the root); download counts are kept",
    )
    rebuild.add_argument(
        "--root", required=True, help="the hub's storage: a directory, or s3://bucket/prefix"
    )
    rebuild.set_defaults(func=_cmd_rebuild)


def _cmd_rebuild(args: argparse.Namespace) -> int:
    from tfhub.server.catalog import Catalog
    from tfhub.server.storage import open_storage

    start = time.perf_counter()
    catalog = Catalog(open_storage(args.root))
    try:
        count = catalog.rebuild()
    finally:
        catalog.close()
    elapsed = time.perf_counter() - start
    print(f"indexed {count} model versions into {catalog.db.describe()} in {elapsed:.1f}s")
    return 0
