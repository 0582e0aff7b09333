"""The model page: usage examples, versions, files, downloads, provenance, docs, facts."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from tfhub.errors import HubError
from tfhub.server.pages.layout import chip, human_size, page
from tfhub.server.pages.markdown import render_docs, safe_link
from tfhub.server.pages.usage import usage_examples

__all__ = ["FORMAT_NAMES", "model_page"]

FORMAT_NAMES = {
    "hub": "TF1 Hub format",
    "saved_model": "TF1 SavedModel",
    "saved_model_2": "TF2 SavedModel",
}


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
        "<div class='scroll'><table class='signatures'><tr><th>Signature</th>"
        "<th>Direction</th><th>Name</th>"
        "<th>dtype</th><th>Shape</th><th>Kind</th></tr>" + "".join(rows) + "</table></div>"
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


def _facts(record: dict[str, Any]) -> dict[str, str]:
    docs = record.get("docs") or {}
    meta = docs.get("metadata", {})
    info = record.get("info") or {}
    archive = record.get("archive") or {}
    facts = {
        "Publisher": record["publisher"],
        "Format": FORMAT_NAMES.get(record["format"], record["format"]),
        "Version": str(record["version"]),
        "Fine-tunable": ", ".join(meta.get("fine-tunable", []))
        or ("yes" if record.get("fine_tunable") else "no"),
        "License": ", ".join(meta.get("license", [])) or "not stated",
        "Download size": human_size(int(archive.get("size", 0))),
        "Size unpacked": human_size(int(info.get("size_bytes", 0))),
        "Variables": f"{info.get('variables', {}).get('count', 0)}",
        "sha256": str(archive.get("sha256", "")),
        "Published": str(record.get("published_at", "")),
    }
    for key in ("module-type", "task", "network-architecture", "dataset", "language"):
        if meta.get(key):
            facts[key.replace("-", " ").capitalize()] = ", ".join(meta[key])
    facts.update(_common_signature_facts(info, meta.get("module-type", [])))
    return facts


def _usage_card(record: dict[str, Any], url: str) -> str:
    parts = []
    for i, example in enumerate(usage_examples(record, url)):
        target = "snippet" if i == 0 else f"snippet-{i}"
        button = "copy" if i == 0 else f"copy-{i}"
        output = (
            f"<p class='output-shape'>Output shape: <code>{escape(example.output)}</code></p>"
            if example.output
            else ""
        )
        parts.append(
            f"<h3>{escape(example.title)}</h3>"
            f"<pre><code id='{target}' class='language-python'>{escape(example.code)}</code></pre>"
            f"<button id='{button}' class='copy' type='button' data-target='{target}'>Copy</button>"
            + output
        )
    return "<div class='card usage'><h2>Use it</h2>" + "".join(parts) + "</div>"


def _versions_card(record: dict[str, Any], versions: list[int]) -> str:
    base = f"/{escape(record['publisher'])}/{escape(record['model'])}"
    latest = max(versions) if versions else record["version"]
    items = []
    for v in sorted(versions, reverse=True):
        label = f"<a href='{base}/{v}'>v{v}</a>"
        if v == record["version"]:
            label = f"<strong>v{v}</strong> (this page)"
        badge = " " + chip("latest", "latest") if v == latest else ""
        items.append(f"<li>{label}{badge}</li>")
    return f"<div class='card'><h2>Versions</h2><ul class='versions'>{''.join(items)}</ul></div>"


def _files_card(record: dict[str, Any]) -> str:
    path = f"/{quote(record['publisher'])}/{quote(record['model'])}/{record['version']}"
    archive = record.get("archive") or {}
    rows = []
    for f in (record.get("blobs") or {}).get("files", []):
        name = str(f["path"]).rsplit("/", 1)[-1]
        href = f"/api/blobs/{escape(str(f['sha256']))}?name={escape(quote(name))}"
        rows.append(
            f"<tr><td><code>{escape(str(f['path']))}</code></td>"
            f"<td class='num'>{escape(human_size(int(f['size'])))}</td>"
            f"<td><a class='download' href='{href}'>download</a></td></tr>"
        )
    table = (
        "<div class='scroll'><table class='files'><tr><th>Path</th><th class='num'>Size</th>"
        f"<th></th></tr>{''.join(rows)}</table></div>"
        if rows
        else "<p class='muted'>This version was published before the hub listed files.</p>"
    )
    return (
        "<div class='card'><h2>Files</h2>"
        f"<p><a class='archive' href='{path}?tf-hub-format=compressed'>Download the archive</a>"
        f" ({escape(human_size(int(archive.get('size', 0))))}, tar.gz)</p>{table}</div>"
    )


def _downloads_card(downloads: dict[str, Any] | None) -> str:
    if not downloads:
        return ""
    by_version = "".join(
        f"<tr><td>v{escape(str(v))}</td><td class='num'>{int(n)}</td></tr>"
        for v, n in sorted(downloads.get("by_version", {}).items(), key=lambda kv: -int(kv[0]))
    )
    days = list(downloads.get("by_day", []))[-14:]
    peak = max([int(n) for _, n in days] + [1])
    by_day = "".join(
        f"<tr><td>{escape(str(day))}</td><td class='num'>{int(n)}</td>"
        f"<td><meter min='0' max='{peak}' value='{int(n)}'></meter></td></tr>"
        for day, n in days
    )
    return (
        "<div class='card downloads'><h2>Downloads</h2>"
        f"<p><strong class='downloads-total'>{int(downloads.get('total', 0))}</strong> in all, "
        f"<strong>{int(downloads.get('last_30_days', 0))}</strong> in the last 30 days</p>"
        + (f"<table class='by-version'>{by_version}</table>" if by_version else "")
        + (f"<h3>Last days</h3><table class='by-day'>{by_day}</table>" if by_day else "")
        + "</div>"
    )


def _link_or_text(value: str) -> str:
    if value.startswith(("http://", "https://")) and safe_link(value):
        return f"<a href='{escape(value)}' rel='nofollow noopener noreferrer'>{escape(value)}</a>"
    return f"<code>{escape(value)}</code>"


def _provenance_card(provenance: dict[str, Any] | None) -> str:
    if not isinstance(provenance, dict) or not provenance.get("source"):
        return ""
    rows = [("Source", _link_or_text(str(provenance["source"])))]
    if provenance.get("sha256"):
        rows.append(("Upstream sha256", f"<code>{escape(str(provenance['sha256']))}</code>"))
    if provenance.get("size") is not None:
        rows.append(("Upstream size", escape(human_size(int(provenance["size"])))))
    if provenance.get("fetched"):
        rows.append(("Fetched", escape(str(provenance["fetched"]))))
    if provenance.get("license"):
        rows.append(("License", escape(str(provenance["license"]))))
    if provenance.get("docs"):
        rows.append(("Docs", _link_or_text(str(provenance["docs"]))))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        "<div class='card provenance'><h2>Provenance</h2><p class='muted'>Mirrored from "
        f"an upstream hub.</p><table>{body}</table></div>"
    )


def model_page(
    record: dict[str, Any],
    versions: list[int],
    url: str,
    *,
    downloads: dict[str, Any] | None = None,
) -> str:
    """The page of one version: ``url`` is the handle the snippets load; ``downloads`` the
    catalog's counts (else the record's ``downloads``, if any)."""
    docs = record.get("docs") or {}
    meta = docs.get("metadata", {})
    info = record.get("info") or {}
    name = f"{record['publisher']}/{record['model']}"
    title = docs.get("title") or name
    fact_rows = "".join(
        f"<tr><th>{escape(k)}</th><td class='fact-{escape(k.lower().replace(' ', '-'))}'>"
        f"{escape(v)}</td></tr>"
        for k, v in _facts(record).items()
    )
    signature_html = "".join(
        f"<h3>Graph variant {escape(str(v['tags']))}</h3>" + _signature_table(v["signatures"])
        for v in info.get("variants", [])
    )
    latest = not versions or record["version"] == max(versions)
    chips = (
        chip(FORMAT_NAMES.get(record["format"], record["format"]))
        + "".join(chip(t) for t in meta.get("module-type", []) + meta.get("task", []))
        + "".join(chip(lic) for lic in meta.get("license", []))
        + (chip("latest", "latest") if latest else chip(f"latest is v{max(versions)}"))
    )
    docs_html = (
        f"<div class='card docs'><h2>Documentation</h2>{render_docs(docs['markdown'])}</div>"
        if docs.get("markdown")
        else ""
    )
    main = (
        _usage_card(record, url)
        + docs_html
        + f"<div class='card'><h2>Signatures</h2>{signature_html}</div>"
        + _files_card(record)
    )
    aside = (
        _versions_card(record, versions)
        + _downloads_card(downloads or record.get("downloads"))
        + _provenance_card(record.get("provenance"))
        + f"<div class='card'><h2>About</h2><table class='facts'>{fact_rows}</table></div>"
    )
    body = (
        f"<h1>{escape(title)}</h1>"
        f"<p class='handle'><code>{escape(name)}/{record['version']}</code></p>"
        f"<p class='chips'>{chips}</p>"
        f"<p class='description'>{escape(docs.get('description', ''))}</p>"
        f"<div class='layout model'><div class='primary'>{main}</div>"
        f"<aside>{aside}</aside></div>"
    )
    return page(title, body, script=True)
