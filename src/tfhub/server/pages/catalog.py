"""The catalog page: search box, facets with counts, sort selector, cards, pagination."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from tfhub.server.pages.layout import chip, human_size, page, query_url
from tfhub.server.pages.model import FORMAT_NAMES

__all__ = ["FACETS", "SORTS", "CatalogQuery", "catalog_page"]

# The facets (query parameter -> heading) and sort orders the page offers.
FACETS = {
    "publisher": "Publisher",
    "module_type": "Module type",
    "format": "Format",
    "license": "License",
    "language": "Language",
    "dataset": "Dataset",
    "architecture": "Architecture",
}
SORTS = {"relevance": "Relevance", "recent": "Recently published", "downloads": "Downloads",
         "name": "Name"}  # fmt: skip


@dataclass(frozen=True)
class CatalogQuery:
    """What the reader asked for: the search words, the facet filters, the sort, the page."""

    q: str = ""
    filters: Mapping[str, str] = field(default_factory=dict)
    sort: str = "relevance"
    page: int = 1

    def url(self, **changes: str | int | None) -> str:
        params: dict[str, str | int | None] = {"q": self.q, **self.filters}
        if self.sort != "relevance":
            params["sort"] = self.sort
        params.update(changes)
        if params.get("page") == 1:
            params["page"] = None
        return query_url(params)


def _card(m: dict[str, Any]) -> str:
    docs = m.get("docs") or {}
    meta = docs.get("metadata", {})
    name = f"{m['publisher']}/{m['model']}"
    versions = m.get("versions") or [m.get("version")]
    latest = m.get("latest_version") or max(v for v in versions if v is not None)
    size = m.get("size")
    if size is None:
        size = (m.get("info") or {}).get("size_bytes") or (m.get("archive") or {}).get("size")
    chips = [chip(t) for t in [*meta.get("module-type", []), *meta.get("task", [])]]
    chips.append(chip(FORMAT_NAMES.get(m.get("format", ""), str(m.get("format", "")))))
    chips.append(chip(", ".join(meta.get("license", [])) or "license not stated"))
    stats = [f"<span class='latest'>v{escape(str(latest))}</span> (latest)"]
    stats.append(f"{len(versions)} version{'s' if len(versions) != 1 else ''}")
    if size is not None:
        stats.append(f"<span class='size'>{escape(human_size(int(size)))}</span>")
    if m.get("downloads") is not None:
        n = int(m["downloads"])
        stats.append(f"<span class='downloads'>{n} download{'s' if n != 1 else ''}</span>")
    return (
        "<div class='card model'>"
        f"<h3><a href='/{escape(name)}'>{escape(name)}</a></h3>"
        f"<p>{escape(docs.get('description') or docs.get('title') or '')}</p>"
        f"<p class='chips'>{''.join(chips)}</p>"
        f"<p class='stats muted'>{' · '.join(stats)}</p></div>"
    )


def _facets_html(facets: Mapping[str, Sequence[tuple[str, int]]], query: CatalogQuery) -> str:
    parts = []
    for key, heading in FACETS.items():
        values = facets.get(key) or []
        if not values:
            continue
        items = []
        for value, count in values:
            on = query.filters.get(key) == value
            href = query.url(**{key: None if on else value, "page": None})
            shown = FORMAT_NAMES.get(value, value) if key == "format" else value
            items.append(
                f"<li><a href='{href}' data-facet='{escape(key)}' data-value='{escape(value)}'"
                + (" class='on' aria-current='true'>✓ " if on else ">")
                + f"{escape(shown)}</a> <span class='n'>{int(count)}</span></li>"
            )
        parts.append(f"<h3>{escape(heading)}</h3><ul>{''.join(items)}</ul>")
    return (
        "<nav class='card facets' aria-label='Filters'><h2>Filter</h2>"
        + "".join(parts)
        + ("</nav>")
    )


def _form(query: CatalogQuery) -> str:
    hidden = "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>"
        for k, v in query.filters.items()
        if v
    )
    options = "".join(
        f"<option value='{k}'{' selected' if k == query.sort else ''}>{escape(v)}</option>"
        for k, v in SORTS.items()
    )
    return (
        "<form class='search' method='get' action='/' role='search'>"
        f"<input type='search' name='q' placeholder='Search models' value='{escape(query.q)}' "
        f"aria-label='Search'>{hidden}"
        f"<select name='sort' aria-label='Sort by'>{options}</select>"
        "<button type='submit'>Search</button></form>"
    )


def _pager(query: CatalogQuery, total: int, per_page: int) -> str:
    pages = max(1, -(-total // per_page))
    if pages == 1:
        return ""
    prev = (
        f"<a rel='prev' href='{query.url(page=query.page - 1)}'>← Previous</a>"
        if query.page > 1
        else ""
    )
    following = (
        f"<a rel='next' href='{query.url(page=query.page + 1)}'>Next →</a>"
        if query.page < pages
        else ""
    )
    return (
        f"<nav class='pager' aria-label='Pages'>{prev}"
        f"<span>Page {query.page} of {pages}</span>{following}</nav>"
    )


def catalog_page(
    results: list[dict[str, Any]],
    *,
    query: CatalogQuery,
    facets: Mapping[str, Sequence[tuple[str, int]]],
    total: int,
    per_page: int,
) -> str:
    """``results``: the items of this page; ``total``: how many match in all; ``facets``:
    per facet (see :data:`FACETS`), its values and how many matching models have each."""
    active = [
        f"<a class='chip' href='{query.url(**{k: None, 'page': None})}'>"
        f"{escape(FACETS.get(k, k))}: {escape(v)} ✕</a>"
        for k, v in query.filters.items()
        if v
    ]
    heading = f"Results for “{escape(query.q)}”" if query.q else "Models"
    cards = "".join(_card(m) for m in results) or "<p class='card'>No model matches.</p>"
    body = (
        f"<h1>{heading}</h1>{_form(query)}"
        f"<div class='layout'>{_facets_html(facets, query)}<div class='results'>"
        f"<p class='count'>{total} model{'s' if total != 1 else ''}"
        + (" · " + " ".join(active) if active else "")
        + f"</p>{cards}{_pager(query, total, per_page)}</div></div>"
    )
    return page("Search" if query.q else "Models", body, header_search=False)
