"""Reading the catalog database: records, versions, blobs and search, always within a read
scope applied in SQL (so totals, facet counts and pages never include what the scope may
not read).

A version is readable when the scope has a grant for it (``*``, its publisher or
``publisher/model``), or when it is not private and its publisher is not a private
namespace. A model is listed through one row: its latest version when the scope has a grant
for it, else its latest public version (none in a private namespace).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tfhub.server.access import ReadScope
from tfhub.server.db.connection import Connection
from tfhub.server.db.rows import FACET_KINDS, search_words

__all__ = ["SORTS", "ScopeSql", "blob", "record", "search", "versions"]

SORTS = ("relevance", "recent", "downloads", "name")
MAX_PER_PAGE = 100


def _in(column: str, values: frozenset[str]) -> tuple[str, list[Any]]:
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' for _ in values)})", sorted(values)


@dataclass(frozen=True)
class ScopeSql:
    """The SQL conditions of one :class:`ReadScope` over ``versions v``."""

    granted: str
    granted_params: list[Any]
    namespace: str
    namespace_params: list[Any]

    @classmethod
    def of(cls, scope: ReadScope) -> ScopeSql:
        if "*" in scope.grants:
            granted, g_params = "1 = 1", []
        else:
            by_publisher, p1 = _in("v.publisher", scope.grants)
            by_model, p2 = _in("v.publisher || '/' || v.model", scope.grants)
            granted, g_params = f"({by_publisher} OR {by_model})", p1 + p2
        namespace, n_params = _in("v.publisher", scope.private_namespaces)
        return cls(granted, g_params, namespace, n_params)

    def readable(self) -> tuple[str, list[Any]]:
        """Condition: this version may be read."""
        public = "v.private = 0" + (f" AND NOT {self.namespace}" if self.namespace_params else "")
        if self.granted == "1 = 1":
            return "1 = 1", []
        if not self.granted_params:  # no grant: the common case, kept simple for the planner
            return f"({public})", list(self.namespace_params)
        return (
            f"({self.granted} OR ({public}))",
            self.granted_params + self.namespace_params,
        )

    def listed(self) -> tuple[str, list[Any]]:
        """Condition: this row stands for its model in listings."""
        public = "v.latest_public = 1" + (
            f" AND NOT {self.namespace}" if self.namespace_params else ""
        )
        if self.granted == "1 = 1":
            return "v.latest_all = 1", []
        if not self.granted_params:
            return f"({public})", list(self.namespace_params)
        return (
            f"(({self.granted} AND v.latest_all = 1) OR (NOT {self.granted} AND {public}))",
            self.granted_params + self.granted_params + self.namespace_params,
        )


def record(
    conn: Connection, scope: ReadScope, publisher: str, model: str, version: int | None
) -> dict[str, Any] | None:
    cond, params = ScopeSql.of(scope).readable()
    sql = f"SELECT v.record FROM versions v WHERE v.publisher = ? AND v.model = ? AND {cond}"
    if version is None:
        row = conn.one(sql + " ORDER BY v.version DESC LIMIT 1", [publisher, model, *params])
    else:
        row = conn.one(sql + " AND v.version = ?", [publisher, model, *params, version])
    return None if row is None else json.loads(row[0])


def versions(conn: Connection, scope: ReadScope, publisher: str, model: str) -> list[int]:
    cond, params = ScopeSql.of(scope).readable()
    rows = conn.all(
        f"SELECT v.version FROM versions v WHERE v.publisher = ? AND v.model = ? AND {cond} "
        "ORDER BY v.version",
        [publisher, model, *params],
    )
    return [int(r[0]) for r in rows]


def blob(conn: Connection, scope: ReadScope, sha256: str) -> dict[str, Any] | None:
    cond, params = ScopeSql.of(scope).readable()
    row = conn.one(
        "SELECT b.size, b.block_size, b.blocks FROM blobs b JOIN versions v ON v.id = "
        f"b.version_id WHERE b.sha256 = ? AND {cond} LIMIT 1",
        [sha256, *params],
    )
    if row is None:
        return None
    return {"size": int(row[0]), "block_size": int(row[1]), "blocks": json.loads(row[2])}


def _fts_query(conn: Connection, q: str | None) -> str | None:
    """``q`` as a full-text query: every word, each as a prefix (None: no word in ``q``)."""
    words = search_words(q or "").split()
    if not words:
        return None
    if conn.postgres:
        return " & ".join(f"{w}:*" for w in words)
    return " ".join(f'"{w}"*' for w in words)


def search(
    conn: Connection,
    scope: ReadScope,
    *,
    q: str | None,
    filters: Mapping[str, str],
    sort: str,
    page: int,
    per_page: int | None,
    counted: tuple[int, dict[str, list[dict[str, Any]]]] | None = None,
) -> dict[str, Any]:
    """One page of models matching ``q`` and ``filters``, with the total and facet counts
    (``counted``: those two, known from an earlier query over the same index)."""
    where, params = ScopeSql.of(scope).listed()
    conditions = [where]
    joins, join_params = "", []  # the items query only: the rank, for sorting by relevance
    order, order_params = "v.sort_name", []
    query = _fts_query(conn, q)
    if query is not None:
        if conn.postgres:
            conditions.append("v.tsv @@ to_tsquery('simple', ?)")
            rank = "ts_rank(v.tsv, to_tsquery('simple', ?)) DESC"
        else:  # a condition, not a join: SQLite plans counts and facets far better so
            conditions.append("v.id IN (SELECT rowid FROM versions_fts WHERE versions_fts MATCH ?)")
            rank = "m.rank"
        params = [*params, query]
        if sort == "relevance":
            order = f"{rank}, v.sort_name"
            if conn.postgres:
                order_params = [query]
            else:
                joins = (
                    " JOIN (SELECT rowid AS fid, bm25(versions_fts, 10.0, 6.0, 3.0, 2.0, 1.0) "
                    "AS rank FROM versions_fts WHERE versions_fts MATCH ?) m ON m.fid = v.id"
                )
                join_params = [query]
    for kind, value in sorted(filters.items()):
        conditions.append(
            "EXISTS (SELECT 1 FROM facets f WHERE f.version_id = v.id AND f.kind = ? "
            "AND f.value = ?)"
        )
        params += [kind, value]
    if sort == "recent":
        order = "v.published_at DESC, v.sort_name"
    elif sort == "downloads":
        order = "COALESCE(d.total, 0) DESC, v.sort_name"
    elif sort == "name":
        order = "v.sort_name"
    body = f"FROM versions v WHERE {' AND '.join(conditions)}"
    total, facets = (
        counted
        if counted is not None
        else _counts(conn, body, params, narrow=query is not None or bool(filters))
    )
    limit = ""
    if per_page is not None:
        limit = f" LIMIT {int(per_page)} OFFSET {int((page - 1) * per_page)}"
    totals = (
        " LEFT JOIN download_totals d ON d.publisher = v.publisher AND d.model = v.model"
        if sort == "downloads"
        else ""
    )
    ids = [
        int(row[0])
        for row in conn.all(
            f"SELECT v.id FROM versions v{joins}{totals} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {order}{limit}",
            join_params + params + order_params,
        )
    ]
    items = _items(conn, ids)
    _add_versions(conn, scope, items)
    pages = 1 if per_page is None else max(1, math.ceil(total / per_page))
    return {
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page if per_page is not None else total,
        "pages": pages,
        "sort": sort,
        "facets": facets,
    }


def _items(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    """The search items of these versions, in this order."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for version_id, raw, size, downloads in conn.all(
            "SELECT v.id, v.record, v.size, COALESCE(d.total, 0) FROM versions v "
            "LEFT JOIN download_totals d ON d.publisher = v.publisher AND d.model = v.model "
            f"WHERE v.id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ):
            item = json.loads(raw)
            item.update(size=int(size), downloads=int(downloads), latest_version=item["version"])
            found[int(version_id)] = item
    return [found[i] for i in ids if i in found]


def _counts(
    conn: Connection, body: str, params: list[Any], narrow: bool
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """The number of matches and the facet counts over them, in one query (the matches
    computed once). ``narrow``: a search or filter, so few matches."""
    join = (
        "m CROSS JOIN facets f WHERE f.version_id = m.id"
        if narrow
        else ("facets f JOIN m ON f.version_id = m.id")
    )
    rows = conn.all(
        f"WITH m AS MATERIALIZED (SELECT v.id {body}) "
        "SELECT '', '', count(*) FROM m UNION ALL "
        # CROSS JOIN: SQLite then reads the few matches first, not every facet row
        # (PostgreSQL plans it as any join).
        f"SELECT f.kind, f.value, count(*) FROM {join} GROUP BY f.kind, f.value",
        params,
    )
    total = 0
    facets: dict[str, list[dict[str, Any]]] = {kind: [] for kind in FACET_KINDS}
    for kind, value, count in sorted(rows, key=lambda r: (-int(r[2]), r[1])):
        if kind == "":
            total = int(count)
        elif kind in facets:
            facets[kind].append({"value": value, "count": int(count)})
    return total, facets


def _add_versions(conn: Connection, scope: ReadScope, items: list[dict[str, Any]]) -> None:
    """Each item's readable versions, in one query."""
    if not items:
        return
    found: dict[tuple[str, str], list[int]] = {}
    cond, params = ScopeSql.of(scope).readable()
    for start in range(0, len(items), 200):
        chunk = items[start : start + 200]
        pairs = " OR ".join("(v.publisher = ? AND v.model = ?)" for _ in chunk)
        keys = [x for item in chunk for x in (item["publisher"], item["model"])]
        for publisher, model, version in conn.all(
            f"SELECT v.publisher, v.model, v.version FROM versions v WHERE ({pairs}) AND {cond}",
            keys + params,
        ):
            found.setdefault((publisher, model), []).append(int(version))
    for item in items:
        item["versions"] = sorted(found.get((item["publisher"], item["model"]), []))
