"""The table every benchmark prints and keeps in ``bench/last_<name>.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def write_table(name: str, header: str, rows: Sequence[tuple[str, str, str]]) -> None:
    """Prints ``header`` and the ``(measure, median, target)`` rows as a Markdown table, and
    writes both to ``bench/last_<name>.md``."""
    table = "| measure | median | target |\n|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} |" for a, b, c in rows
    )
    print(header)
    print(table)
    (BENCH / f"last_{name}.md").write_text(header + "\n\n" + table + "\n")
