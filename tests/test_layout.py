"""The shape of the source tree that docs/architecture.md promises: no import cycle (imports
inside functions included), every setting read in config.py, files that hold one idea."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parent.parent / "src" / "tfhub"
_SETTING = re.compile(r"TFHUB_[A-Z0-9_]+")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("tfhub", exclude_type_checking_imports=True)
    # The package root is the lazy public facade (imports happen on attribute access).
    modules = {m for m in graph.modules if m != "tfhub"}
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _setting_literals(path: Path) -> list[str]:
    """Each string constant of ``path`` that is exactly a setting's name, as ``line name``."""
    return [
        f"{node.lineno} {node.value}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _SETTING.fullmatch(node.value)
    ]


def test_settings_are_read_only_in_config():
    """A string that is exactly a setting's name (what reading it takes) appears only in
    the config package; messages may still mention settings inside sentences."""
    offenders = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        if path.parent != SRC / "config"
        for hit in (f"{path.relative_to(SRC)}:{h}" for h in _setting_literals(path))
    ]
    assert offenders == []


def test_the_settings_check_sees_a_read(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text('import os\nx = os.environ.get("TFHUB_SOMETHING")\ny = "set TFHUB_X=1"\n')
    assert [hit.split()[-1] for hit in _setting_literals(bad)] == ["TFHUB_SOMETHING"]


def test_no_source_file_over_500_lines():
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 500
    }
    assert long == {}
