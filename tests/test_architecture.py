"""The package's shape, checked by a machine: no import cycles, and each FlagEmbedding module's
specifics in its own file (shared code asks the registry in studio.modules).

The import graph is grimp's (what import-linter is built on); it sees imports inside functions
too, so a cycle hidden in a function-level import is still a cycle.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp  # import-linter's graph (the test extras install it)

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
    assert "studio.training.runs" in graph.modules  # the graph is studio's, not an empty one
    cycles = _cycles(graph)
    assert not cycles, "import cycles in studio:\n" + "\n".join(_describe(graph, c) for c in cycles)


def _files_naming(word: str, whole_word: bool) -> list[str]:
    """What `grep -rli[w] WORD studio --include=*.py` lists (the issue's own measure)."""
    flags = "-rliw" if whole_word else "-rli"
    done = subprocess.run(
        ["grep", flags, word, "studio", "--include=*.py"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode in (0, 1), done.stderr
    return sorted(done.stdout.split())


def test_each_module_is_named_in_its_own_files_only():
    """Shared code asks the registry (studio.modules) instead of naming a module: the layerwise
    reranker is named in at most 3 files, the dense+sparse+ColBERT module (whole word) in 5."""
    layerwise = _files_naming("layerwise", whole_word=False)
    assert (
        "studio/facts/modules/layerwise.py" in layerwise
    )  # the measure sees the module's own file
    assert len(layerwise) <= 3, layerwise
    own = _files_naming("m3", whole_word=True)
    assert "studio/facts/modules/m3.py" in own
    assert len(own) <= 5, own


def test_a_module_is_one_file_and_one_registry_entry():
    """Every registered file defines the module the registry lists, and every listed module has
    its file: adding one is a new file plus its name in REGISTERED."""
    from studio.facts import modules

    files = sorted(p.stem for p in (ROOT / "studio" / "facts" / "modules").glob("*.py"))
    assert sorted(modules.REGISTERED) == [f for f in files if f not in ("__init__", "base")]
    assert len(modules.MODULES) == len(modules.REGISTERED)


def test_the_layers_contract_holds():
    """pyproject's import-linter contracts (the folders are the layers) pass on this checkout."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "studio's layers" in result.stdout and "0 broken" in result.stdout
