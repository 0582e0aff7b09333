"""What every page shares: the style sheet (light and dark), the one script, the security
headers (a strict CSP that allows exactly these two by hash), the frame, the 404 page."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from urllib.parse import urlencode

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "chip",
    "human_size",
    "not_found_page",
    "page",
    "query_url",
]

# Colours are CSS variables, swapped by prefers-color-scheme; every pair of text and
# background keeps a contrast ratio of at least 4.5:1 (WCAG AA). Nothing is wider than the
# viewport: long names wrap anywhere, tables and code scroll inside their own box.
_STYLE = """
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1f2328;--muted:#57606a;--card:#fff;
--line:#d8dee4;--link:#0550ae;--bar:#9a3412;--bar-fg:#fff;--chip:#ddf4ff;--chip-fg:#0a3069;
--code:#eef1f4;--warn:#9a6700;--ok:#116329}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;
--card:#161b22;--line:#30363d;--link:#79c0ff;--bar:#7c2d12;--bar-fg:#fff;--chip:#12304f;
--chip-fg:#cae8ff;--code:#1f262e;--warn:#e3b341;--ok:#56d364}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);
background:var(--bg);line-height:1.5;overflow-wrap:anywhere}
a{color:var(--link)}
header.top{background:var(--bar);color:var(--bar-fg);padding:8px 16px;display:flex;
flex-wrap:wrap;gap:8px 16px;align-items:center}
header.top form.quick{flex:0 1 320px;min-width:0;margin-left:auto}
header.top form.quick input{width:100%;padding:4px 10px}
header.top a{color:var(--bar-fg);text-decoration:none;font-weight:700;font-size:18px}
main{max-width:1120px;margin:16px auto;padding:0 16px}
h1{font-size:26px;margin:8px 0}h2{font-size:19px;margin:0 0 8px}h3{font-size:16px;margin:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px;
margin:0 0 16px;min-width:0}
.muted,.count{color:var(--muted)}
.chip{display:inline-block;background:var(--chip);color:var(--chip-fg);border-radius:12px;
padding:1px 10px;margin:2px 4px 2px 0;font-size:13px;text-decoration:none}
.chip.latest{background:var(--ok);color:var(--card)}
.warn{color:var(--warn)}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;font-size:14px;
vertical-align:top}
th{white-space:nowrap}.scroll td{overflow-wrap:normal}a.download{white-space:nowrap}
table.files td:first-child{overflow-wrap:anywhere}
td.num,th.num{text-align:right;white-space:nowrap}
code,pre{background:var(--code);border-radius:4px;font-family:ui-monospace,Menlo,Consolas,
monospace;font-size:13px}
code{padding:1px 4px}
pre{padding:12px;overflow-x:auto;white-space:pre;overflow-wrap:normal}
pre code{padding:0;background:none}
input,select,button{font:inherit;color:var(--fg);background:var(--card);
border:1px solid var(--line);border-radius:6px;padding:6px 10px;max-width:100%}
button{cursor:pointer}
form.search{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 16px}
form.search input[type=search]{flex:1 1 220px;min-width:0}
.layout{display:grid;grid-template-columns:240px minmax(0,1fr);gap:16px}
.layout.model{grid-template-columns:minmax(0,1fr) 320px}
@media (max-width:800px){.layout,.layout.model{grid-template-columns:minmax(0,1fr)}
.layout .facets{order:2}}
.facets h3{margin-top:8px;font-size:14px}
.facets ul{list-style:none;padding:0;margin:4px 0 8px}
.facets li a{text-decoration:none}.facets li a.on{font-weight:700}
.facets .n{color:var(--muted);font-size:13px}
.model h3 a{text-decoration:none}.usage h3{margin-top:16px}.card>p:last-child{margin-bottom:0}
.pager{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:8px 0 24px}
.versions li{margin:2px 0}
meter{width:100%;height:10px}
.docs img{max-width:100%}
.docs table{margin:8px 0}
footer{color:var(--muted);text-align:center;font-size:13px;padding:16px}
"""

# The pages' only script: copy buttons (no inline handlers: the CSP allows this one script
# by its hash, and nothing else). A button names the element it copies in data-target.
SCRIPT = (
    "document.querySelectorAll('button.copy').forEach(function(b){"
    "b.addEventListener('click',function(){"
    "navigator.clipboard.writeText(document.getElementById(b.dataset.target).textContent)"
    ".then(function(){b.textContent='Copied'})})});"
)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(SCRIPT)}; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Sent with every response of the hub (pages, API, files).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def page(title: str, body: str, *, script: bool = False, header_search: bool = True) -> str:
    """A whole HTML page around ``body`` (already escaped HTML); ``header_search``: a search
    box in the top bar (pages with their own search box leave it out)."""
    search = (
        "<form class='quick' method='get' action='/' role='search'>"
        "<input type='search' name='q' placeholder='Search models' aria-label='Search models'>"
        "</form>"
        if header_search
        else ""
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta name='color-scheme' content='light dark'>"
        f"<title>{escape(title)} · tfhub</title><style>{_STYLE}</style></head><body>"
        f"<header class='top'><a href='/'>tfhub</a>{search}</header>"
        f"<main>{body}</main>"
        "<footer>tfhub · <a href='/openapi.json'>API</a></footer>"
        + (f"<script>{SCRIPT}</script>" if script else "")
        + "</body></html>"
    )


def human_size(n: float) -> str:
    """``n`` bytes for people: ``512 B``, ``14.1 kB``, ``3.2 MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def chip(text: str, css: str = "") -> str:
    return f"<span class='chip{' ' + css if css else ''}'>{escape(text)}</span>"


def query_url(params: dict[str, str | int | None]) -> str:
    """``/?...`` with the non-empty ``params``, escaped for an attribute."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return escape("/?" + urlencode(kept) if kept else "/")


def not_found_page(message: str) -> str:
    """The 404 page browsers get (API clients keep their JSON or plain text)."""
    body = (
        "<div class='card notfound'><h1>Page not found</h1>"
        f"<p class='message'>{escape(message)}</p>"
        "<form class='search' method='get' action='/'>"
        "<input type='search' name='q' placeholder='Search models' aria-label='Search'>"
        "<button type='submit'>Search</button></form>"
        "<p><a href='/'>All models</a></p></div>"
    )
    return page("Not found", body, header_search=False)
