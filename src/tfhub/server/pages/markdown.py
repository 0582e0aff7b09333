"""Model docs (untrusted: anyone who may publish writes them) as GitHub-flavoured Markdown.

* tables, strikethrough and fenced code are rendered; raw HTML is shown as text, never
  interpreted;
* links keep only ``http:``, ``https:``, ``mailto:`` and relative targets (no
  ``javascript:``, ``data:``, ``vbscript:``, ``file:``); they open with ``rel="nofollow
  noopener noreferrer"``;
* images are not loaded: an image becomes a link to it, named by its alt text, so a page
  view never makes a reader's browser contact a host the docs chose (which would leak the
  reader's address). The CSP's ``img-src 'self'`` would block such images anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["render_docs", "safe_link"]

_SAFE_SCHEME = re.compile(r"(https?|mailto):", re.IGNORECASE | re.ASCII)
_ANY_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*:", re.IGNORECASE | re.ASCII)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


def safe_link(url: str) -> bool:
    """Whether ``url`` may be a link target: http(s), mailto or a relative reference."""
    bare = _CONTROL.sub("", url)  # browsers drop these inside a scheme ("java\tscript:")
    if _SAFE_SCHEME.match(bare):
        return True
    return not _ANY_SCHEME.match(bare) and not bare.startswith("\\")


def _image_as_link(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = "".join(child.content for child in token.children or []) or "image"
    if not safe_link(src):
        return escape(f"[image: {alt}]")
    return f"<a href='{escape(src)}' rel='nofollow noopener noreferrer'>[image: {escape(alt)}]</a>"


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return str(renderer.renderToken(tokens, idx, options, env))


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
_MD.validateLink = safe_link  # type: ignore[method-assign]
_MD.add_render_rule("image", _image_as_link)
_MD.add_render_rule("link_open", _link_open)


def render_docs(markdown: str) -> str:
    """``markdown`` as HTML that is safe to put in a page (wide tables scroll in a box)."""
    html = str(_MD.render(markdown))  # raw HTML is escaped: every "<table>" here is the renderer's
    return html.replace("<table>", "<div class='scroll'><table>").replace(
        "</table>", "</table></div>"
    )
