"""The package's modules import each other without a cycle.

A cycle held together by lazy imports still couples the modules in it: the
wiring could not be understood, or a module imported, without the others. So
an import inside a function counts as an edge here. Imports under
``if TYPE_CHECKING:`` do not run and are left out; an edge to a package's
``__init__`` (the implicit parent import) is left out too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import durable_lambda

PACKAGE = Path(durable_lambda.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _drop_type_checking_blocks(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []


def _imported(tree: ast.Module, name: str, *, is_package: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):  # every import, at module level or inside a function
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".") if is_package else name.split(".")[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    packages = {name for name, path in paths.items() if path.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        _drop_type_checking_blocks(tree)
        targets = _imported(tree, name, is_package=path.name == "__init__.py")
        graph[name] = {t for t in targets if t in paths and t != name and t not in packages}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports, each sorted."""
    reach = {node: _reachable(graph, node) for node in graph}
    found: list[list[str]] = []
    grouped: set[str] = set()
    for node in sorted(graph):
        if node in grouped or node not in reach[node]:
            continue
        group = sorted(other for other in reach[node] if node in reach[other])
        grouped.update(group)
        found.append(group)
    return found


def test_the_checker_sees_a_lazy_import_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from durable_lambda import client\n")
    assert "durable_lambda.client" in _imported(tree, "durable_lambda.task", is_package=False)


def test_no_module_of_the_package_takes_part_in_an_import_cycle():
    graph = import_graph()
    assert "durable_lambda.worker" in graph  # the walk found the package
    assert cycles(graph) == []
