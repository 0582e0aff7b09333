"""The ``tfhub`` command: a thin layer over the public functions.

Only this module configures logging output. TensorFlow is imported by the subcommands that
need it, never by ``tfhub --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from tfhub import __version__, config
from tfhub.errors import HubError

__all__ = ["main"]


def _cmd_resolve(args: argparse.Namespace) -> int:
    from tfhub.handles.resolve import resolve

    print(resolve(args.handle))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from tfhub.tf1.interop import convert

    print(convert(args.src, args.dst))
    return 0


def _cache_entries() -> list[tuple[str, str, str | None]]:
    """(sha1 name, handle, problem) of every entry in the cache."""
    from tfhub.handles import cache

    root = config.cache_dir()
    if not root.is_dir():
        return []
    entries = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or "." in path.name:
            continue
        descriptor = path.with_name(path.name + cache.DESCRIPTOR_SUFFIX)
        handle = "?"
        try:
            first = descriptor.read_text("utf8").splitlines()[0]
            handle = first.removeprefix("Module: ")
        except (OSError, IndexError):
            pass
        entries.append((path.name, handle, cache.check_entry(path)))
    return entries


def _cmd_cache(args: argparse.Namespace) -> int:
    from tfhub.handles import cache

    if args.cache_command == "dir":
        print(config.cache_dir())
        return 0
    entries = _cache_entries()
    if args.cache_command == "list":
        if args.json:
            rows = [{"entry": e, "handle": h, "complete": p is None} for e, h, p in entries]
            print(json.dumps(rows, indent=1))
        else:
            for name, handle, problem in entries:
                print(f"{name}  {handle}" + (f"  (incomplete: {problem})" if problem else ""))
        return 0
    # verify: re-hash every file against the manifest
    bad = 0
    for name, handle, _ in entries:
        problems = cache.verify_entry(config.cache_dir() / name)
        status = "ok" if not problems else "; ".join(problems)
        bad += bool(problems)
        print(f"{name}  {handle}  {status}")
    return 1 if bad else 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfhub",
        description="Publish, host, find and reuse pretrained TensorFlow model pieces.",
    )
    parser.add_argument("--version", action="version", version=f"tfhub {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("resolve", help="download and cache a handle; print its local directory")
    p.add_argument("handle", help="path or URL of a model")
    p.set_defaults(func=_cmd_resolve)

    p = sub.add_parser("convert", help="convert a TF1 Hub module into a TF2 Reusable SavedModel")
    p.add_argument("src", help="handle (path or URL) of a TF1 Hub module")
    p.add_argument("dst", help="directory to write the SavedModel to")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("cache", help="look at the model cache (TFHUB_CACHE_DIR)")
    cache_sub = p.add_subparsers(dest="cache_command", required=True)
    cache_sub.add_parser("dir", help="print the cache directory")
    lst = cache_sub.add_parser("list", help="list cached models and whether they are complete")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    cache_sub.add_parser("verify", help="re-hash every cached file against its manifest")
    p.set_defaults(func=_cmd_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``tfhub`` command; returns its exit status."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except HubError as exc:
        print(f"tfhub: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
