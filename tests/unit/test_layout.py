"""Guards of the package layout (docs/architecture.md): no import cycles, function-level
imports included; no module over 400 lines; every study figure drawn; every Stan and
workflow test marked slow."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO, TESTS
from shrinksim import design
from shrinksim.study import plot

PACKAGE = REPO / "src/shrinksim"
MAX_LINES = 400


def modules(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its ``__init__.py``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.AST, name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules of ``known`` that an import statement ``node`` of module ``name`` imports:
    ``from a.b import c`` is module ``a.b.c`` if that is a module, else ``a.b``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
            yield from [prefix for prefix in prefixes if prefix in known][:1]  # the longest
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the module's package, up level - 1 packages
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = package[: len(package) - node.level + 1]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        for alias in node.names:
            if f"{source}.{alias.name}" in known:
                yield f"{source}.{alias.name}"
            elif source in known:
                yield source


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere (module level, in functions,
    under ``if TYPE_CHECKING``: every import statement)."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = {
            target
            for node in ast.walk(tree)
            for target in _imported(node, name, path, known)
            if target != name
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each strongly connected component of more than
    one module (Tarjan's algorithm, then a shortest way back within the component)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for component in components:
        if len(component) < 2:
            continue
        start = min(component)
        way = {other: [start, other] for other in graph[start] & component}
        frontier = list(way)
        while start not in way:  # breadth first back to the start
            nxt = []
            for node in frontier:
                for other in sorted(graph[node] & component):
                    if other not in way:
                        way[other] = [*way[node], other]
                        nxt.append(other)
            frontier = nxt
        found.append(way[start])
    return found


def test_no_import_cycles():
    graph = import_graph(PACKAGE)
    # the graph sees what it must: a function-level import, a submodule named in a `from`
    assert "shrinksim.study.summarize" in graph["shrinksim.cli.study"]
    assert "shrinksim.sbc.design" in graph["shrinksim.cli.sbc"]
    assert "shrinksim.tables" in graph["shrinksim.study.summarize"]
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_cycle_finder_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from . import c\n")
    (package / "sub" / "c.py").write_text("import pkg.a\nfrom pkg import sub\n")
    (package / "d.py").write_text("from pkg.sub import c\n")  # into the cycle, not part of it
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a", "pkg.sub"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]


def test_no_module_over_400_lines():
    lengths = {
        str(path.relative_to(REPO)): len(path.read_text().splitlines())
        for path in modules(PACKAGE).values()
    }
    assert len(lengths) > 20
    long = {path: n for path, n in lengths.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_study_figure_has_a_drawing_function_and_vice_versa():
    named, drawn = set(design.FIGURES), set(plot.FIGURES)
    assert named - drawn == set(), "in design.FIGURES, not drawn by study.plot.FIGURES"
    assert drawn - named == set(), "drawn by study.plot.FIGURES, not in design.FIGURES"
    assert len(design.FIGURES) == len(named) and all(map(callable, plot.FIGURES.values()))


def test_every_stan_and_workflow_test_is_slow():
    """`make test-fast` (pytest -m "not slow") runs none of them: conftest marks them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-m", "not slow", str(TESTS / "stan"), str(TESTS / "workflow")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 5, said  # 5: no test selected
    deselected = re.search(r"\((\d+) deselected\)", said)
    assert deselected and int(deselected.group(1)) > 20, said
