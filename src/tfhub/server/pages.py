"""HTML pages of the hub: the catalog (search + filters) and one page per model version."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any

from markdown_it import MarkdownIt

from tfhub.errors import HubError

__all__ = ["SECURITY_HEADERS", "catalog_page", "model_page"]

_MD = MarkdownIt("commonmark", {"html": False})  # raw HTML in docs is shown, never executed

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#202124;background:#fafafa}
header{background:#ff6f00;color:#fff;padding:12px 24px}header a{color:#fff;text-decoration:none}
main{max-width:960px;margin:24px auto;padding:0 24px}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:16px;margin:12px 0}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 8px;
text-align:left;font-size:14px}code,pre{background:#f1f3f4;border-radius:4px;padding:2px 4px}
pre{padding:12px;overflow-x:auto}.chip{display:inline-block;background:#e8f0fe;color:#1967d2;
border-radius:12px;padding:2px 10px;margin:2px;font-size:13px}
form.search input,form.search select{padding:6px;margin-right:6px}
button{padding:6px 12px;cursor:pointer}
"""

# The pages' only script: the snippet's copy button (no inline handlers: CSP allows this one
# script by its hash, and nothing else).
_SCRIPT = (
    "document.getElementById('copy').addEventListener('click',function(){var b=this;"
    "navigator.clipboard.writeText(document.getElementById('snippet').textContent)"
    ".then(function(){b.textContent='Copied'})});"
)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Sent with every response of the hub (pages, API, files).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_FORMAT_NAMES = {
    "hub": "TF1 Hub format",
    "saved_model": "TF1 SavedModel",
    "saved_model_2": "TF2 SavedModel",
}


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} · tfhub</title><style>{_STYLE}</style></head><body>"
        "<header><a href='/'><strong>tfhub</strong></a></header>"
        f"<main>{body}</main></body></html>"
    )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _select(name: str, label: str, options: list[str], current: str | None) -> str:
    items = [f"<option value=''>{escape(label)}</option>"]
    for option in options:
        selected = " selected" if option == current else ""
        items.append(f"<option value='{escape(option)}'{selected}>{escape(option)}</option>")
    return f"<select name='{name}' aria-label='{escape(label)}'>{''.join(items)}</select>"


def catalog_page(
    results: list[dict[str, Any]],
    *,
    all_models: list[dict[str, Any]],
    q: str | None,
    publisher: str | None,
    fmt: str | None,
    module_type: str | None,
) -> str:
    publishers = sorted({m["publisher"] for m in all_models})
    formats = sorted({m["format"] for m in all_models})
    types = sorted(
        {
            t
            for m in all_models
            for t in ((m.get("docs") or {}).get("metadata", {}).get("module-type", []))
        }
    )
    form = (
        "<form class='search' method='get' action='/'>"
        f"<input type='search' name='q' placeholder='Search models' value='{escape(q or '')}' "
        "aria-label='Search'>"
        + _select("publisher", "All publishers", publishers, publisher)
        + _select("format", "All formats", formats, fmt)
        + _select("module_type", "All module types", types, module_type)
        + "<button type='submit'>Search</button></form>"
    )
    cards = []
    for m in results:
        docs = m.get("docs") or {}
        cards.append(
            "<div class='card model'>"
            f"<h3><a href='/{escape(m['publisher'])}/{escape(m['model'])}'>"
            f"{escape(m['publisher'])}/{escape(m['model'])}</a></h3>"
            f"<p>{escape(docs.get('description') or docs.get('title') or '')}</p>"
            f"<span class='chip'>{escape(_FORMAT_NAMES.get(m['format'], m['format']))}</span>"
            f"<span class='chip'>{len(m['versions'])} version(s)</span></div>"
        )
    body = f"<h1>Models</h1>{form}<p class='count'>{len(results)} model(s)</p>" + (
        "".join(cards) or "<p>No model matches.</p>"
    )
    return _page("Models", body)


def _signature_table(signatures: dict[str, Any]) -> str:
    rows = []
    for name, sig in sorted(signatures.items()):
        for direction in ("inputs", "outputs"):
            for key, spec in sorted(sig[direction].items()):
                shape = "unknown" if spec["shape"] is None else str(spec["shape"])
                rows.append(
                    f"<tr><td>{escape(name)}</td><td>{direction[:-1]}</td>"
                    f"<td><code>{escape(key)}</code></td><td>{escape(spec['dtype'])}</td>"
                    f"<td>{escape(shape.replace('None', '?'))}</td>"
                    f"<td>{escape(spec['kind'])}</td></tr>"
                )
    return (
        "<table class='signatures'><tr><th>Signature</th><th>Direction</th><th>Name</th>"
        "<th>dtype</th><th>Shape</th><th>Kind</th></tr>" + "".join(rows) + "</table>"
    )


def _common_signature_facts(info: dict[str, Any], module_types: list[str]) -> dict[str, str]:
    """The common signatures the model implements ("Implements"), and a warning ("Signature
    check") when the docs give a common signature as module-type that the model does not
    implement. Computed from the validator's signatures, so older records show it too."""
    from tfhub.signatures.common import COMMON_SIGNATURES, find_common_signatures

    try:
        report = find_common_signatures(info, module_type=module_types)
    except (HubError, KeyError, TypeError, AttributeError, IndexError):
        return {}  # a record from an older or foreign validator: nothing to say
    facts = {}
    if report.implements:
        facts["Implements"] = ", ".join(n.replace("-", " ") for n in report.implements)
    checks = []
    for claimed in module_types:
        if claimed not in COMMON_SIGNATURES or claimed in report.implements:
            continue
        family = "image-feature-vector" if claimed == "image-classification" else claimed
        reasons = [
            f"{m.where}: {'; '.join(m.problems)}" for m in report.near_misses if m.name == family
        ]
        checks.append(
            f"the docs say {claimed}, but the model does not implement that common signature"
            + (f" ({reasons[0]})" if reasons else "")
        )
    if checks:
        facts["Signature check"] = "; ".join(checks)
    return facts


def model_page(record: dict[str, Any], versions: list[int], url: str) -> str:
    docs = record.get("docs") or {}
    meta = docs.get("metadata", {})
    info = record["info"]
    title = docs.get("title") or f"{record['publisher']}/{record['model']}"
    snippet = f'hub.KerasLayer("{url}")' if record["format"] != "hub" else f'hub.Module("{url}")'
    facts = {
        "Publisher": record["publisher"],
        "Format": _FORMAT_NAMES.get(record["format"], record["format"]),
        "Version": str(record["version"]),
        "Fine-tunable": ", ".join(meta.get("fine-tunable", []))
        or ("yes" if record.get("fine_tunable") else "no"),
        "License": ", ".join(meta.get("license", [])) or "not stated",
        "Download size": _size(record["archive"]["size"]),
        "Size unpacked": _size(info.get("size_bytes", 0)),
        "Variables": f"{info.get('variables', {}).get('count', 0)}",
        "sha256": record["archive"]["sha256"],
        "Published": record.get("published_at", ""),
    }
    for key in ("module-type", "task", "network-architecture", "dataset", "language"):
        if meta.get(key):
            facts[key.replace("-", " ").capitalize()] = ", ".join(meta[key])
    facts.update(_common_signature_facts(info, meta.get("module-type", [])))
    fact_rows = "".join(
        f"<tr><th>{escape(k)}</th><td class='fact-{escape(k.lower().replace(' ', '-'))}'>"
        f"{escape(v)}</td></tr>"
        for k, v in facts.items()
    )
    version_links = " ".join(
        f"<a class='chip' href='/{escape(record['publisher'])}/{escape(record['model'])}/{v}'>"
        f"v{v}</a>"
        for v in versions
    )
    variants = info.get("variants", [])
    signature_html = "".join(
        f"<h3>Graph variant {escape(str(v['tags']))}</h3>" + _signature_table(v["signatures"])
        for v in variants
    )
    body = (
        f"<h1>{escape(title)}</h1>"
        f"<p class='handle'><code>{escape(record['publisher'])}/{escape(record['model'])}/"
        f"{record['version']}</code></p>"
        f"<p class='description'>{escape(docs.get('description', ''))}</p>"
        "<div class='card'><h2>Use it</h2>"
        f"<pre><code id='snippet'>{escape(snippet)}</code></pre>"
        f"<button id='copy' type='button'>Copy</button><script>{_SCRIPT}</script></div>"
        f"<div class='card'><h2>Versions</h2>{version_links}</div>"
        f"<div class='card'><table class='facts'>{fact_rows}</table></div>"
        f"<div class='card'><h2>Signatures</h2>{signature_html}</div>"
        + (
            f"<div class='card docs'><h2>Documentation</h2>{_MD.render(docs['markdown'])}</div>"
            if docs.get("markdown")
            else ""
        )
    )
    return _page(title, body)
