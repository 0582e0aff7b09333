"""Benchmark: the catalog database at 10,000 models, on SQLite and on PostgreSQL.

Run with `make bench` (PostgreSQL must be installed: `apt-get install postgresql`). Writes
BENCH_MODELS (default 10,000) versions through the publish path's storage calls (a tiny
archive with `put_file`, then the record with `create`; no TensorFlow) with varied docs and
metadata, then for each database:

* times `Catalog.rebuild()` (what `tfhub index rebuild` does: read every record, index it);
* starts `tfhub serve` on it and measures, BENCH_REQUESTS times each over one keep-alive
  connection, the latency of the catalog page (`GET /`, with a search and a filter), a
  full-text search and a filtered, sorted search (`GET /api/models?...`), a model page
  (`GET /<publisher>/<model>/1`) and the API list (`GET /api/models?page=N`).

Prints a table of p50/p95 (milliseconds) and writes it to bench/last_catalog.md.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.hub import HubServer  # noqa: E402
from tests.helpers.postgres import postgres  # noqa: E402
from tests.helpers.records import docs_of, write_record  # noqa: E402

from tfhub.server.catalog import Catalog  # noqa: E402
from tfhub.server.storage import LocalStorage  # noqa: E402

MODELS = int(os.environ.get("BENCH_MODELS", "10000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
WORDS = ["mobilenet", "resnet", "bert", "efficientnet", "inception", "vit", "albert",
         "electra", "universal", "encoder", "detector", "segmenter", "speech", "music"]  # fmt: skip
TYPES = ["image-feature-vector", "image-classification", "text-embedding",
         "image-object-detection", "audio-embedding", "text-classification"]  # fmt: skip
LICENSES = ["apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "custom"]
DATASETS = ["imagenet", "coco", "wikipedia", "librispeech", "openimages"]
LANGUAGES = ["en", "de", "fr", "ja", "zh", "es"]


def write_models(storage: LocalStorage, count: int) -> list[str]:
    rng = random.Random(0)
    names = []
    for i in range(count):
        word, kind = rng.choice(WORDS), rng.choice(TYPES)
        name = f"pub{i % 50:02d}/{word}_{i:05d}/{kind.split('-')[0]}/1"
        docs = docs_of(
            f"{word.title()} {i}",
            f"A {word} {kind.replace('-', ' ')} model number {i}, trained on "
            f"{rng.choice(DATASETS)}.",
            module_type=kind,
            license=rng.choice(LICENSES),
            dataset=rng.choice(DATASETS),
            language=rng.sample(LANGUAGES, 2),
            network_architecture=word,
        )
        day = 1 + i % 28
        write_record(storage, name, docs=docs, published_at=f"2026-02-{day:02d}T00:00:00+00:00")
        names.append(name)
    return names


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def measure(url: str, names: list[str]) -> dict[str, tuple[float, float]]:
    rng = random.Random(1)
    session = requests.Session()
    pages = max(1, MODELS // 20)
    cases = {
        "catalog page (GET /?q=&module_type=)": lambda: (
            f"/?q={rng.choice(WORDS)}&module_type={rng.choice(TYPES)}"
        ),
        "search (GET /api/models?q=)": lambda: f"/api/models?q={rng.choice(WORDS)}",
        "search + filters + sort": lambda: (
            f"/api/models?q={rng.choice(WORDS)[:4]}&license={rng.choice(LICENSES)}"
            f"&language={rng.choice(LANGUAGES)}&sort=downloads"
        ),
        "model page (GET /<model>/1)": lambda: f"/{rng.choice(names)}",
        "API list (GET /api/models?page=N)": lambda: (
            f"/api/models?sort=name&page={rng.randint(1, pages)}"
        ),
        "API model (GET /api/models/<model>)": lambda: f"/api/models/{rng.choice(names)[:-2]}",
    }
    results = {}
    for label, path in cases.items():
        for _ in range(10):  # warm-up
            session.get(url + path(), timeout=60).raise_for_status()
        samples = []
        for _ in range(REQUESTS):
            target = url + path()
            start = time.perf_counter()
            resp = session.get(target, timeout=60)
            samples.append((time.perf_counter() - start) * 1000)
            resp.raise_for_status()
        results[label] = _percentiles(samples)
    return results


def run_backend(label: str, root: Path, db_url: str, names: list[str]) -> dict[str, object]:
    catalog = Catalog(LocalStorage(root), database=db_url)
    start = time.perf_counter()
    count = catalog.rebuild()
    rebuild = time.perf_counter() - start
    catalog.close()
    assert count == len(names), (count, len(names))
    env = {"TFHUB_DATABASE_URL": db_url, "TFHUB_CATALOG_RECONCILE_SECONDS": "0"}
    with HubServer(str(root), env) as server:
        latencies = measure(server.url, names)
    print(f"{label}: rebuild {rebuild:.1f}s", flush=True)
    return {"rebuild": rebuild, "latencies": latencies}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tfhub-bench-catalog-") as tmp:
        root = Path(tmp) / "hub"
        start = time.perf_counter()
        names = write_models(LocalStorage(root), MODELS)
        written = time.perf_counter() - start
        print(f"wrote {len(names)} records in {written:.1f}s", flush=True)
        results = {"SQLite": run_backend("SQLite", root, f"sqlite:///{tmp}/bench.sqlite3", names)}
        with postgres() as url:
            results["PostgreSQL"] = run_backend("PostgreSQL", root, url, names)
    lines = [
        f"Catalog at {MODELS} models ({REQUESTS} requests per row, one keep-alive connection; "
        f"{platform.machine()}, {os.cpu_count()} cores). p50 / p95 in ms.",
        "",
        "| | SQLite | PostgreSQL |",
        "|---|---|---|",
        "| index rebuild (s) | "
        + " | ".join(f"{r['rebuild']:.1f}" for r in results.values())  # type: ignore[str-format]
        + " |",
    ]
    for case in results["SQLite"]["latencies"]:  # type: ignore[union-attr]
        cells = []
        for r in results.values():
            p50, p95 = r["latencies"][case]  # type: ignore[index]
            cells.append(f"{p50:.1f} / {p95:.1f}")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    (REPO / "bench" / "last_catalog.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
