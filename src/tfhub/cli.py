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

from tfhub import config
from tfhub.errors import (
    ArchiveError,
    CacheError,
    DownloadError,
    HubError,
    ModelNotFoundError,
    NotAModelError,
    PublishError,
)
from tfhub.version import version

__all__ = ["EXIT_CODES", "main"]

# Exit status per error class (the first matching class wins); other errors of ours exit 2.
EXIT_CODES: tuple[tuple[type[HubError], int], ...] = (
    (ModelNotFoundError, 3),
    (DownloadError, 4),
    (PublishError, 4),
    (ArchiveError, 5),
    (NotAModelError, 5),
    (CacheError, 6),
)
_EPILOG = (
    "exit status: 0 ok, 1 check failed (cache verify/rm), 2 usage or other error, "
    "3 model not found (or not cached offline), 4 network/server error or refused publish, "
    "5 not a valid model or archive, 6 cache not usable"
)


def _cmd_resolve(args: argparse.Namespace) -> int:
    from tfhub.handles.resolve import resolve

    print(resolve(args.handle))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from tfhub.tf1.convert import convert

    print(convert(args.src, args.dst))
    return 0


def _cmd_export_text_embedding(args: argparse.Namespace) -> int:
    from tfhub.exporters.text_embedding import export_text_embedding

    print(
        export_text_embedding(
            args.embedding_file,
            args.export_dir,
            format=args.format,
            num_oov_buckets=args.num_oov_buckets,
            preprocessing=not args.no_preprocessing,
            lowercase=args.lowercase,
            binary=args.binary,
        )
    )
    return 0


def _cmd_import_sentence_transformer(args: argparse.Namespace) -> int:
    from tfhub.exporters.sentence_transformer import import_sentence_transformer

    print(import_sentence_transformer(args.model_dir, args.export_dir))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from tfhub.server.app import serve

    serve(args.root, host=args.host, port=args.port)
    return 0


def _read_docs(path: str | None) -> str | None:
    if path is None:
        return None
    with open(path, encoding="utf8") as f:
        return f.read()


def _cmd_publish(args: argparse.Namespace) -> int:
    from tfhub.server import client

    docs = _read_docs(args.docs)
    if args.server:
        record = client.publish_to_server(args.src, args.name, server=args.server, docs=docs)
    else:
        record = client.publish_to_root(args.src, args.name, root=args.root, docs=docs)
    print(
        f"published {record['handle']} ({record['format']}, sha256 {record['archive']['sha256']})"
    )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from tfhub.handles.resolve import resolve
    from tfhub.tools.inspect import inspect_model

    info = inspect_model(resolve(args.handle))
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    from tfhub.tools.inspect import format_text

    print(format_text(info))
    return 0


def _cmd_mirror(args: argparse.Namespace) -> int:
    from tfhub.server.mirror import export_mirror

    count = export_mirror(args.root, args.out)
    print(f"wrote {count} model versions to {args.out}")
    return 0


def _human_size(size: int) -> str:
    """``1.5 MB``: a byte count for people (powers of 1000, like ``du --si``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _cmd_cache(args: argparse.Namespace) -> int:
    import datetime

    from tfhub.handles import cache

    if args.cache_command == "dir":
        print(config.cache_dir())
        return 0
    if args.cache_command == "prune":
        for name in cache.prune():
            print(f"removed {name}")
        return 0
    if args.cache_command == "rm":
        missing = []
        for wanted in args.handles:
            removed = cache.remove(wanted)
            missing += [] if removed else [wanted]
            for entry in removed:
                print(f"removed {entry.name}  {entry.handle or '?'}")
        if missing:
            print(f"tfhub: error: not in the cache: {', '.join(missing)}", file=sys.stderr)
            return 1
        return 0
    if args.cache_command == "list":
        entries = cache.list_entries()
        when = [datetime.datetime.fromtimestamp(e.last_used) for e in entries]
        if args.json:
            rows = [
                {
                    "entry": e.name,
                    "handle": e.handle,
                    "complete": e.complete,
                    "problem": e.problem,
                    "size": e.size,
                    "files": e.files,
                    "last_used": w.astimezone().isoformat(timespec="seconds"),
                    "owner": e.owner,
                }
                for e, w in zip(entries, when, strict=True)
            ]
            print(json.dumps(rows, indent=1))
            return 0
        for e, w in zip(entries, when, strict=True):
            state = f"  (not usable: {e.problem})" if e.problem else ""
            print(
                f"{e.name}  {_human_size(e.size):>9}  {w:%Y-%m-%d %H:%M}  {e.handle or '?'}{state}"
            )
        total = sum(e.size for e in entries)
        print(f"{len(entries)} entries, {_human_size(total)} in total")
        return 0
    # verify: re-hash every file against the manifest
    bad = 0
    for entry, problems in cache.verify():
        status = "ok" if not problems else "; ".join(problems)
        bad += bool(problems)
        print(f"{entry.name}  {entry.handle or '?'}  {status}")
    return 1 if bad else 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfhub",
        description="Publish, host, find and reuse pretrained TensorFlow model pieces.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"tfhub {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("resolve", help="download and cache a handle; print its local directory")
    p.add_argument("handle", help="path or URL of a model")
    p.set_defaults(func=_cmd_resolve)

    p = sub.add_parser("download", help="same as resolve: fetch into the cache, print the path")
    p.add_argument("handle", help="path or URL of a model")
    p.set_defaults(func=_cmd_resolve)

    p = sub.add_parser("inspect", help="format, graph variants, signatures, variables of a model")
    p.add_argument("handle", help="path or URL of a model")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("serve", help="run the hub server (hosting protocol, pages, publishing)")
    p.add_argument("root", help="storage: a directory, or s3://bucket/prefix")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("publish", help="publish a model directory as publisher/model/version")
    p.add_argument("src", help="the model directory (SavedModel or TF1 Hub module)")
    p.add_argument("name", help="publisher/model/version")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="URL of a tfhub server (token from TFHUB_TOKEN)")
    where.add_argument("--root", help="publish straight into a storage root")
    p.add_argument("--docs", help="Markdown documentation (tfhub.dev docs format)")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("mirror", help="static mirror of a storage root")
    mirror_sub = p.add_subparsers(dest="mirror_command", required=True)
    export = mirror_sub.add_parser(
        "export", help="write a tree any static web server can serve to tensorflow_hub"
    )
    export.add_argument("root", help="storage root of a hub")
    export.add_argument(
        "out", help="output directory (new or empty; appears complete or not at all)"
    )
    p.set_defaults(func=_cmd_mirror)

    p = sub.add_parser(
        "convert",
        help="convert a TF1 Hub module into a TF2 Reusable SavedModel (outputs checked against "
        "the module in a new process; exit status 2 on a mismatch)",
    )
    p.add_argument("src", help="handle (path or URL) of a TF1 Hub module")
    p.add_argument("dst", help="directory to write the SavedModel to (must not exist, or be empty)")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "export-text-embedding",
        help="turn a word-vector file (word2vec/GloVe text or word2vec binary) into a module",
    )
    p.add_argument("embedding_file", help="word2vec/GloVe text file, or word2vec .bin")
    p.add_argument("export_dir", help="directory to write the module to (must not exist)")
    p.add_argument(
        "--format",
        choices=("tf2", "tf1"),
        default="tf2",
        help="tf2: Reusable SavedModel (default); tf1: TF1 Hub module",
    )
    p.add_argument(
        "--num-oov-buckets",
        type=int,
        default=1,
        help="hash buckets for out-of-vocabulary tokens (default 1)",
    )
    p.add_argument(
        "--no-preprocessing", action="store_true", help="the module takes tokens, not sentences"
    )
    p.add_argument("--lowercase", action="store_true", help="lower-case sentences first")
    p.add_argument(
        "--binary",
        action="store_true",
        help="the file is word2vec binary (implied by a .bin suffix)",
    )
    p.set_defaults(func=_cmd_export_text_embedding)

    p = sub.add_parser(
        "import-sentence-transformer",
        help="convert a local sentence-transformers BERT checkpoint into hub modules",
    )
    p.add_argument("model_dir", help="config.json, model.safetensors, vocab.txt, ...")
    p.add_argument("export_dir", help="gets preprocessor/, encoder/ and sentence_embedding/")
    p.set_defaults(func=_cmd_import_sentence_transformer)

    p = sub.add_parser("cache", help="look at the model cache (TFHUB_CACHE_DIR)")
    cache_sub = p.add_subparsers(dest="cache_command", required=True)
    cache_sub.add_parser("dir", help="print the cache directory")
    lst = cache_sub.add_parser(
        "list", help="list cached models: size, last use, handle, whether complete"
    )
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    cache_sub.add_parser("verify", help="re-hash every cached file against its manifest")
    rm = cache_sub.add_parser("rm", help="remove cached models (by handle or entry name)")
    rm.add_argument("handles", nargs="+")
    cache_sub.add_parser(
        "prune", help="remove incomplete entries and your leftovers of dead downloads (locks too)"
    )
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
        return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 2)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
