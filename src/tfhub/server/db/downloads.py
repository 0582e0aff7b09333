"""Download counts: per version and UTC day, written in batches off the request path.

:meth:`DownloadCounter.add` only puts an event on a queue (it never touches the database); a
thread sums the events and writes them every ``interval`` seconds or every ``batch`` events,
whichever comes first, and :meth:`DownloadCounter.close` writes what is left. A failed write
is logged and its counts kept for the next one.
"""

from __future__ import annotations

import collections
import datetime
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from tfhub.server.access import ReadScope
from tfhub.server.db.connection import Connection
from tfhub.server.db.queries import ScopeSql

__all__ = ["DownloadCounter", "model_downloads", "write_counts"]

logger = logging.getLogger(__name__)

Key = tuple[str, str, int, str]  # publisher, model, version, day
_STOP = ("", "", 0, "")


def today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


class DownloadCounter:
    """Sums download events and hands them to ``write`` in batches, from its own thread."""

    def __init__(
        self,
        write: Callable[[collections.Counter[Key]], None],
        *,
        interval: float = 1.0,
        batch: int = 500,
    ) -> None:
        self._write = write
        self.interval = interval
        self.batch = batch
        self._queue: queue.SimpleQueue[Key] = queue.SimpleQueue()
        self._pending: collections.Counter[Key] = collections.Counter()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._flushed = threading.Condition()
        self.writes = 0  # batches written (the tests check that counting batches)

    def add(self, publisher: str, model: str, version: int) -> None:
        """Counts one download; never blocks and never fails."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tfhub-downloads")
                self._thread.daemon = True
                self._thread.start()
        self._queue.put((publisher, model, version, today()))

    def _run(self) -> None:
        stop = False
        while not stop:
            deadline = time.monotonic() + self.interval
            events = 0
            while events < self.batch:
                try:
                    key = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
                except queue.Empty:
                    break
                if key == _STOP:
                    stop = True
                    break
                self._pending[key] += 1
                events += 1
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        counts, self._pending = self._pending, collections.Counter()
        try:
            self._write(counts)
            self.writes += 1
        except Exception:  # keep them for the next batch
            logger.exception("Writing %d download counts failed; retrying", sum(counts.values()))
            self._pending.update(counts)

    def close(self) -> None:
        """Writes every count received so far, then stops the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=60)


def write_counts(conn: Connection, counts: collections.Counter[Key]) -> None:
    conn.executemany(
        "INSERT INTO downloads (publisher, model, version, day, count) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (publisher, model, version, day) DO UPDATE SET "
        "count = downloads.count + excluded.count",
        [(*key, n) for key, n in sorted(counts.items())],
    )
    totals: collections.Counter[tuple[str, str]] = collections.Counter()
    for (publisher, model, _, _), n in counts.items():
        totals[publisher, model] += n
    conn.executemany(
        "INSERT INTO download_totals (publisher, model, total) VALUES (?, ?, ?) "
        "ON CONFLICT (publisher, model) DO UPDATE SET total = download_totals.total + "
        "excluded.total",
        [(*key, n) for key, n in sorted(totals.items())],
    )


def model_downloads(
    conn: Connection, scope: ReadScope, publisher: str, model: str, days: int = 30
) -> dict[str, Any]:
    """``{"total", "last_30_days", "by_version", "by_day"}`` over the readable versions
    (``by_day``: the last ``days`` days with downloads, oldest first)."""
    cond, params = ScopeSql.of(scope).readable()
    rows = conn.all(
        "SELECT o.version, o.day, o.count FROM downloads o JOIN versions v ON "
        "v.publisher = o.publisher AND v.model = o.model AND v.version = o.version "
        f"WHERE o.publisher = ? AND o.model = ? AND {cond}",
        [publisher, model, *params],
    )
    since = (datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days - 1)).isoformat()
    by_version: collections.Counter[str] = collections.Counter()
    by_day: collections.Counter[str] = collections.Counter()
    for version, day, count in rows:
        by_version[str(version)] += int(count)
        if day >= since:
            by_day[day] += int(count)
    return {
        "total": sum(by_version.values()),
        "last_30_days": sum(by_day.values()),
        "by_version": dict(sorted(by_version.items(), key=lambda kv: int(kv[0]))),
        "by_day": [[day, by_day[day]] for day in sorted(by_day)],
    }
