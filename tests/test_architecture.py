"""The package's module structure: every module imports, imports form no cycle, no
module reaches into another module's private names, and no module is over
:data:`MAX_LINES` lines unless :data:`LONG_MODULES` says why.

The import graph is read from the source with :mod:`ast`: every ``import``/``from``
statement naming a flowtools module, at module level or inside a function. An edge goes
to the module named (``from flowtools.enrichment import inventory`` -> the submodule
``flowtools.enrichment.inventory``; ``from flowtools.frames import lazy`` ->
``flowtools.frames``). Importing a submodule also runs its package's ``__init__``; that
implicit step is not an edge (a package may import its own submodules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import flowtools

ROOT = Path(flowtools.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module named, names imported from it, line) for each flowtools import of ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))
    package = name if _is_package(name) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "flowtools")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "flowtools":
                out.append((target, [a.name for a in node.names], node.lineno))
    return out


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name in MODULES:
        for target, names, _line in _imports(name):
            found = []
            for n in names:
                if f"{target}.{n}" in MODULES:
                    found.append(f"{target}.{n}")  # a submodule
            if not names or len(found) < len(names):
                while target not in MODULES:  # `import flowtools.x.y` of a missing module: its package
                    target = target.rpartition(".")[0]
                found.append(target)
            graph[name].update(t for t in found if t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_imports_in_a_fresh_interpreter():
    code = f"import importlib\nfor m in {sorted(MODULES)!r}:\n    importlib.import_module(m)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_import_graph_has_no_cycle():
    graph = _edges()
    assert graph["flowtools.frames"] <= {"flowtools.errors"}, "the engine layer depends on nothing else"
    assert _cycles(graph) == []


def test_no_module_imports_a_private_name_of_another():
    private = [f"{MODULES[name].relative_to(ROOT.parent)}:{line}: {n} from {target}"
               for name in MODULES for target, names, line in _imports(name)
               for n in names if n.startswith("_") and not n.startswith("__") and target != name]
    assert private == []


#: A module this long does several jobs: split it by responsibility (docs/design.md).
MAX_LINES = 400
#: The modules allowed over MAX_LINES: (at most this many lines, why). The budget is their
#: size when listed, rounded up a little; a module that shrinks below MAX_LINES leaves the
#: list (the test says so), one that outgrows its budget must be split or argued again.
LONG_MODULES: dict[str, tuple[int, str]] = {
    "flowtools.read.reader": (540, "one class, _Reader: plan, chunked read, retry file by file and salvage "
                                   "share its state; split pending (the Parquet path, salvage)"),
    "flowtools.report.figures": (500, "one short function per figure plus the HTML tables; split "
                                      "pending (exposure figures, traffic figures, tables)"),
    "flowtools.report.render": (475, "the notebook -> HTML pipeline (parameters, kernel, offline check, "
                                     "export); split pending (parameters apart)"),
    "flowtools.enrichment.collect": (450, "collect_inventory and its AWS context: assume-role, enabled "
                                          "regions, per-region errors, the JSON as the AWS CLI writes it"),
    "flowtools.sample.scenario": (720, "data more than logic: the scenario's cases, one group of "
                                       "conversations each"),
    "flowtools.sample.truth": (475, "the ground truth of every analysis (exposure, watchlist, egress, "
                                    "scanners, changes), one function each, apart from the records"),
    "flowtools.sample.estate": (425, "data: the fixed estate (accounts, VPCs, interfaces, rules)"),
}


def _lines(name: str) -> int:
    return len(MODULES[name].read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_the_line_budget_without_a_reason():
    over = {name: _lines(name) for name in MODULES if _lines(name) > MAX_LINES}
    unexplained = sorted(f"{n}: {lines} lines" for n, lines in over.items() if n not in LONG_MODULES)
    assert unexplained == [], "split these by responsibility, or add them to LONG_MODULES with a reason"
    grown = sorted(f"{n}: {over[n]} lines > budget {LONG_MODULES[n][0]}" for n in over
                   if over[n] > LONG_MODULES[n][0])
    assert grown == []


def test_the_long_module_list_is_honest():
    stale = sorted(n for n in LONG_MODULES if n not in MODULES or _lines(n) <= MAX_LINES)
    assert stale == [], "no longer long (or gone): remove from LONG_MODULES"
    assert all(reason for _budget, reason in LONG_MODULES.values())


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_cycle_finder(graph, cycle):
    assert _cycles(graph) == cycle
