"""The import graph of rlmaml, read from the source: no cycles, and the layers import only downwards.

Every ``import`` and ``from … import`` in every module counts, also those inside functions (a cycle hidden in a
function-local import is still a cycle); ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, otherwise to ``pkg``. Only imports under ``if TYPE_CHECKING:`` are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rlmaml

ROOT = Path(rlmaml.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("rlmaml", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return skipped


def imports_of(name: str) -> set[str]:
    """The rlmaml modules that module ``name`` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import rlmaml.rl.x as y` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
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


def test_the_walk_sees_the_package():
    assert {"rlmaml.core", "rlmaml.rl.trainer", "rlmaml.rl.algos.trpo", "rlmaml.envs.registry", "rlmaml.cli"} <= set(GRAPH)
    assert "rlmaml.rl.objectives" in GRAPH["rlmaml.rl.algos.trpo"]          # from ..objectives import …
    assert "rlmaml.rl.algos.base" in GRAPH["rlmaml.rl.algos.trpo"]          # from .base import …
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def _reach(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        for w in GRAPH[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


@pytest.mark.parametrize("layer,allowed", [
    ("rlmaml.core", ("rlmaml.core",)),                                                  # torch only
    ("rlmaml.envs", ("rlmaml.envs", "rlmaml.errors", "rlmaml.core")),                   # never the algorithms
    ("rlmaml.supervised", ("rlmaml.supervised", "rlmaml.core", "rlmaml.errors", "rlmaml.config", "rlmaml.checkpoint",
                           "rlmaml.logging", "rlmaml.runtime", "rlmaml.run", "rlmaml.stats", "rlmaml.viz")),
])
def test_layers_import_only_downwards(layer, allowed):
    for name in (n for n in GRAPH if n == layer or n.startswith(layer + ".")):
        bad = {m for m in _reach(name) if m != "rlmaml" and not any(m == a or m.startswith(a + ".") for a in allowed)}
        assert not bad, f"{name} reaches {sorted(bad)}"


def test_the_library_never_imports_the_commands():
    for name, targets in GRAPH.items():
        if not (name == "rlmaml.cli" or name.startswith("rlmaml.cli.") or name == "rlmaml.__main__"):
            assert not {t for t in targets if t == "rlmaml.cli" or t.startswith("rlmaml.cli.")}, name
