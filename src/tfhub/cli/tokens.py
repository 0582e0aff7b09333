"""``tfhub token``: hub tokens for the server's token file (only their hashes are stored).

* ``tfhub token new [--read NS,...] [--publish NS,...]`` prints a new random token (give it
  to its user, who sets ``TFHUB_TOKEN``) and the line for the server's ``TFHUB_TOKEN_FILE``.
* ``tfhub token hash [--read ...] [--publish ...]`` reads an existing token from stdin (e.g.
  an old plaintext line's) and prints its line, to migrate a token file without new tokens.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from tfhub.errors import UsageError

__all__ = ["add_commands"]


def _cmd_new(args: argparse.Namespace) -> int:
    from tfhub.server.access import new_token, token_line

    token = new_token()
    line = token_line(token, args.read, args.publish)
    print(f"token: {token}")
    print(f"line:  {line}")
    print(
        "tfhub: give the token to its user (TFHUB_TOKEN); add the line to the server's "
        "TFHUB_TOKEN_FILE. The token is not stored anywhere: it cannot be shown again.",
        file=sys.stderr,
    )
    return 0


def _cmd_hash(args: argparse.Namespace) -> int:
    from tfhub.server.access import token_line

    token = sys.stdin.readline().strip()
    if not token:
        raise UsageError("tfhub token hash reads the token from stdin: none was given.")
    print(token_line(token, args.read, args.publish))
    return 0


def add_commands(sub: Any, add: Callable[[Any, str, str], argparse.ArgumentParser]) -> None:
    """Adds ``tfhub token new|hash`` to the parser's subcommands ``sub``."""
    p = add(sub, "token", "hub tokens: a new one, or the token-file line of an existing one")
    token_sub = p.add_subparsers(dest="token_command", required=True)
    for name, func, what in (
        ("new", _cmd_new, "print a new token and its line for TFHUB_TOKEN_FILE"),
        ("hash", _cmd_hash, "print the TFHUB_TOKEN_FILE line of a token read from stdin"),
    ):
        q = add(token_sub, name, what)
        q.add_argument(
            "--read",
            action="append",
            default=[],
            metavar="NS,...",
            help="namespaces (publishers), publisher/model or * this token may read",
        )
        q.add_argument(
            "--publish",
            action="append",
            default=[],
            metavar="NS,...",
            help="namespaces (publishers) or * this token may publish to (and read)",
        )
        q.set_defaults(func=func)
