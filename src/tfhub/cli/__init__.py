"""The ``tfhub`` command: a thin layer over the public functions.

Only this module configures logging output. TensorFlow is imported by the subcommands that
need it, never by ``tfhub --help``.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from tfhub import config
from tfhub.cli import gc as _gc
from tfhub.cli import index, mirror, tokens
from tfhub.cli.common import check_root as _check_root
from tfhub.errors import (
    ArchiveError,
    CacheError,
    DownloadError,
    HubError,
    ModelNotFoundError,
    NotAModelError,
    PublishError,
    UsageError,
)
from tfhub.version import version

__all__ = ["EXIT_CODES", "main"]

logger = logging.getLogger("tfhub.cli")  # also when run as python -m tfhub.cli

# Exit status per error class (the first matching class wins); other errors of ours exit 2.
EXIT_CODES: tuple[tuple[type[HubError], int], ...] = (
    (ModelNotFoundError, 3),
    (DownloadError, 4),
    (PublishError, 4),
    (ArchiveError, 5),
    (NotAModelError, 5),
    (CacheError, 6),
)
EXIT_OS_ERROR = 7
_EPILOG = (
    "exit status: 0 ok, 1 check failed (cache verify/rm, a source of mirror pull), 2 usage "
    "or other error, 3 model not found (or not cached offline), 4 network/server error or "
    "refused publish, "
    f"5 not a valid model or archive, 6 cache not usable, {EXIT_OS_ERROR} file system or "
    "operating system error, 130 interrupted. Errors are one line 'tfhub: error: ...'; "
    "-v adds the traceback."
)


def _cmd_resolve(args: argparse.Namespace) -> int:
    from tfhub.handles.resolve import resolve

    logger.info(
        "Resolving %s (cache %s%s)",
        args.handle,
        config.cache_dir(),
        ", offline" if config.offline() else "",
    )
    start = time.monotonic()
    path = resolve(args.handle)
    logger.info("Resolved %s to %s in %.1f s", args.handle, path, time.monotonic() - start)
    print(path)
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
    _check_root(args.root, must_exist=False)
    from tfhub.server.app import serve

    try:
        serve(args.root, host=args.host, port=args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"Port {args.port} on {args.host} is already in use (another 'tfhub serve'?): "
                "stop that process, or pick another port with --port N (--port 0 picks a free "
                "one)."
            ) from exc
        if exc.errno == errno.EACCES:
            raise UsageError(
                f"Not allowed to listen on port {args.port} of {args.host}: ports below 1024 "
                "need privileges; pick a port above 1024 with --port N."
            ) from exc
        raise
    return 0


def _read_docs(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(
            f"--docs {path}: cannot read it ({reason}); give the path of the model's "
            "Markdown documentation (tfhub.dev docs format), or leave --docs out."
        ) from exc


def _cmd_publish(args: argparse.Namespace) -> int:
    from tfhub.server import client

    docs = _read_docs(args.docs)
    if args.server:
        record = client.publish_to_server(
            args.src, args.name, server=args.server, docs=docs, private=args.private
        )
    else:
        _check_root(args.root, must_exist=False)
        record = client.publish_to_root(
            args.src, args.name, root=args.root, docs=docs, private=args.private
        )
    for warning in [] if args.quiet else record.get("warnings") or []:
        print(f"tfhub: warning: documentation {warning}", file=sys.stderr)
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


def _add_verbosity(parser: argparse.ArgumentParser, *, default: object) -> None:
    """``-v``/``-q`` before or after the subcommand (a subcommand's own default is SUPPRESS
    so that it does not undo a ``-v`` given before it)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log what tfhub does (INFO) and show tracebacks of errors",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="print errors only"
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfhub",
        description="Publish, host, find and reuse pretrained TensorFlow model pieces.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"tfhub {version()}")
    _add_verbosity(parser, default=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(group: Any, name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(name, help=help, parents=[common])
        return parser

    p = add(sub, "resolve", help="download and cache a handle; print its local directory")
    p.add_argument("handle", help="path or URL of a model")
    p.set_defaults(func=_cmd_resolve)

    p = add(sub, "download", help="same as resolve: fetch into the cache, print the path")
    p.add_argument("handle", help="path or URL of a model")
    p.set_defaults(func=_cmd_resolve)

    p = add(sub, "inspect", help="format, graph variants, signatures, variables of a model")
    p.add_argument("handle", help="path or URL of a model")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_inspect)

    p = add(sub, "serve", help="run the hub server (hosting protocol, pages, publishing)")
    p.add_argument("root", help="storage: a directory, or s3://bucket/prefix")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.set_defaults(func=_cmd_serve)

    p = add(sub, "publish", help="publish a model directory as publisher/model/version")
    p.add_argument("src", help="the model directory (SavedModel or TF1 Hub module)")
    p.add_argument("name", help="publisher/model/version")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="URL of a tfhub server (token from TFHUB_TOKEN)")
    where.add_argument("--root", help="publish straight into a storage root")
    p.add_argument("--docs", help="Markdown documentation (tfhub.dev docs format)")
    p.add_argument("--private", action="store_true", help="readable only with a token's read grant")
    p.set_defaults(func=_cmd_publish)
    tokens.add_commands(sub, add)

    mirror.add_commands(sub, add)

    p = add(
        sub,
        "convert",
        help="convert a TF1 Hub module into a TF2 Reusable SavedModel (outputs checked against "
        "the module in a new process; exit status 2 on a mismatch)",
    )
    p.add_argument("src", help="handle (path or URL) of a TF1 Hub module")
    p.add_argument("dst", help="directory to write the SavedModel to (must not exist, or be empty)")
    p.set_defaults(func=_cmd_convert)

    p = add(
        sub,
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

    p = add(
        sub,
        "import-sentence-transformer",
        help="convert a local sentence-transformers BERT checkpoint into hub modules",
    )
    p.add_argument("model_dir", help="config.json, model.safetensors, vocab.txt, ...")
    p.add_argument("export_dir", help="gets preprocessor/, encoder/ and sentence_embedding/")
    p.set_defaults(func=_cmd_import_sentence_transformer)

    p = add(sub, "cache", help="look at the model cache (TFHUB_CACHE_DIR)")
    cache_sub = p.add_subparsers(dest="cache_command", required=True)
    add(cache_sub, "dir", help="print the cache directory")
    lst = add(
        cache_sub, "list", help="list cached models: size, last use, handle, whether complete"
    )
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    add(cache_sub, "verify", help="re-hash every cached file against its manifest")
    rm = add(cache_sub, "rm", help="remove cached models (by handle or entry name)")
    rm.add_argument("handles", nargs="+")
    add(
        cache_sub,
        "prune",
        help="remove incomplete entries and your leftovers of dead downloads (locks too)",
    )
    p.set_defaults(func=_cmd_cache)
    index.add_commands(sub, add)
    _gc.add_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``tfhub`` command; returns its exit status (see :data:`EXIT_CODES`)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    verbose, quiet = bool(args.verbose), bool(args.quiet)
    logging.basicConfig(
        level=logging.ERROR if quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if verbose:
        logging.getLogger("tfhub").setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("tfhub: interrupted", file=sys.stderr)
        return 130
    except (HubError, OSError) as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"tfhub: error: {_one_line(exc)}", file=sys.stderr)
        if isinstance(exc, OSError) and not isinstance(exc, HubError):
            return EXIT_OS_ERROR
        return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 2)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    filename = getattr(exc, "filename", None) if not isinstance(exc, HubError) else None
    if filename and str(filename) not in text:
        text = f"{filename}: {text}"
    return text
