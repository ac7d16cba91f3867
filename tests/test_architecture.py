"""The package's shape, checked by a machine: no import cycles, and each FlagEmbedding module's
specifics in its own file (shared code asks the registry in studio.modules).

The import graph is grimp's (what import-linter is built on); it sees imports inside functions
too, so a cycle hidden in a function-level import is still a cycle.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parents[1]


def _graph():
    sys.path.insert(0, str(ROOT))  # this checkout's studio, whatever is installed
    try:
        return grimp.build_graph("studio", include_external_packages=False, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return found


def _describe(graph, component: list[str]) -> str:
    members = set(component)
    lines = [" <-> ".join(component)]
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(
                    f"    {importer}:{detail['line_number']} imports {imported}"
                    f" ({detail['line_contents']})"
                )
    return "\n".join(lines)


def test_cycle_finder_sees_a_function_level_cycle():
    """The check itself can fail: a cycle made only of function-level imports is found."""
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b", line_number=3, line_contents="import b")
    graph.add_import(importer="pkg.b", imported="pkg.a", line_number=9, line_contents="import a")
    graph.add_import(importer="pkg.c", imported="pkg.a", line_number=1, line_contents="import a")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


def test_studio_has_no_import_cycles():
    """No two studio modules import each other, directly or round a loop, at any level."""
    graph = _graph()
    assert "studio.runs" in graph.modules  # the graph is studio's, not an empty one
    cycles = _cycles(graph)
    assert not cycles, "import cycles in studio:\n" + "\n".join(
        _describe(graph, c) for c in cycles
    )
