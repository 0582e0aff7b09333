"""``tfhub gc``: delete the files of a hub's storage that no record references."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_commands"]


def add_commands(sub: Any, add: Any) -> None:
    p = add(sub, "gc", help="delete blobs and archives of a hub that no record references")
    p.add_argument("--root", required=True, help="the hub's storage: a directory or s3://...")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.add_argument(
        "--grace",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="keep unreferenced files younger than this (default 24): publishes in flight",
    )
    p.set_defaults(func=_cmd_gc)


def _cmd_gc(args: argparse.Namespace) -> int:
    from tfhub.errors import UsageError
    from tfhub.server.gc import collect
    from tfhub.server.storage import open_storage

    if args.grace < 0:
        raise UsageError(f"--grace {args.grace}: give the hours as a number >= 0.")
    report = collect(open_storage(args.root), grace_hours=args.grace, dry_run=args.dry_run)
    verb = "would delete" if report.dry_run else "deleted"
    for obj in report.deleted:
        print(f"{verb} {obj.key} ({obj.size} bytes)")
    print(
        f"{report.records} records; {verb} {len(report.deleted)} unreferenced files "
        f"({report.freed_bytes} bytes); kept {len(report.young)} younger than {args.grace:g} h"
    )
    return 0
