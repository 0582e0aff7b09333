"""``tfhub mirror``: ``export`` (a static copy of a hub) and ``pull`` (copy models from
upstream hubs and local caches into a hub)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from tfhub.cli.common import check_root
from tfhub.errors import UsageError

__all__ = ["add_commands"]


def _cmd_export(args: argparse.Namespace) -> int:
    from tfhub.server.catalog import Catalog
    from tfhub.server.mirror import export_mirror
    from tfhub.server.storage import open_storage

    check_root(args.root, must_exist=True)
    if not Catalog(open_storage(args.root)).models():
        raise UsageError(
            f"ROOT {args.root} holds no published models: give the storage directory of a hub "
            "(the ROOT of 'tfhub serve ROOT'); nothing was written."
        )
    count = export_mirror(args.root, args.out)
    print(f"wrote {count} model versions to {args.out}")
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from tfhub import config
    from tfhub.server.mirror_pull import Outcome, pull, read_source_file

    sources = list(args.sources)
    if args.from_file:
        sources += read_source_file(args.from_file)
    if args.root:
        check_root(args.root, must_exist=False)

    def show(outcome: Outcome) -> None:
        where = f" -> {outcome.target}" if outcome.target else ""
        why = f": {outcome.reason}" if outcome.reason else ""
        print(f"{outcome.status} {outcome.label}{where}{why}", flush=True)

    summary = pull(
        sources,
        server=args.server,
        root=args.root,
        as_path=args.as_path,
        progress=config.download_progress() or sys.stderr.isatty(),
        on_outcome=None if args.quiet else show,
    )
    failed = summary.of("failed")
    print(
        f"{len(summary.of('mirrored'))} mirrored, {len(summary.of('skipped'))} skipped, "
        f"{len(failed)} failed"
    )
    for outcome in failed:
        print(f"tfhub: error: {outcome.label}: {outcome.reason}", file=sys.stderr)
    return 1 if failed else 0


def add_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds ``tfhub mirror export|pull`` to the subcommands ``sub``."""
    p = add(sub, "mirror", help="mirror models: export a static copy, pull from upstream")
    mirror_sub = p.add_subparsers(dest="mirror_command", required=True)
    export = add(
        mirror_sub, "export", help="write a tree any static web server can serve to tensorflow_hub"
    )
    export.add_argument("root", help="storage root of a hub")
    export.add_argument(
        "out", help="output directory (new or empty; appears complete or not at all)"
    )
    export.set_defaults(func=_cmd_export)
    pull = add(
        mirror_sub,
        "pull",
        help="copy models from upstream (tfhub.dev, Kaggle, a hub), a tensorflow_hub or "
        "kagglehub cache, or a model directory into a hub, with their provenance",
    )
    pull.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="a model URL, a tensorflow_hub cache directory, a kagglehub cache, or a model "
        "directory (with --as)",
    )
    where = pull.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="URL of a tfhub hub (token from TFHUB_TOKEN)")
    where.add_argument("--root", help="publish straight into a storage root")
    pull.add_argument(
        "--from-file", metavar="FILE", help="more sources, one per line ('#' comments)"
    )
    pull.add_argument(
        "--as",
        dest="as_path",
        metavar="PATH",
        help="publisher/model/version on the hub (required for a model directory)",
    )
    pull.set_defaults(func=_cmd_pull)
