"""The shape of ``src/labelwise`` (docs: style.md §1 and §4), read with `ast`; each failure names every offender.

- No import cycle between labelwise modules. Imports inside functions count (a deferred import still ties the two
  modules together; it only hides the cycle until the call); imports under ``if TYPE_CHECKING:`` do not (they
  never run). The root package is left out: its exports are lazy (`labelwise._lazy`) and import nothing.
- No module over `MAX_MODULE_LINES` lines, no function or method over `MAX_FUNCTION_LINES` lines (from its
  ``def`` line to its last line, docstring included: a reader reads all of it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "labelwise"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Module:
    name: str  # dotted: labelwise.train.trainer; a package by its own name (labelwise.train)
    path: Path
    file: str  # the path from the source root, as failure messages show it
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package relative imports start from."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def read_modules(src: Path, package: str) -> dict[str, Module]:
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, path, path.relative_to(src).as_posix(), tree)
    return modules


# -- import cycles -----------------------------------------------------------------------------------------------
def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at any depth, but not in the body of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif _is_type_checking(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
        else:
            stack.extend(ast.iter_child_nodes(node))


def _imported(node: ast.Import | ast.ImportFrom, module: Module, modules: dict[str, Module]) -> set[str]:
    """The labelwise modules one import statement loads (a `from m import x` loads m.x when x is a module)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level:
        parts = module.package.split(".")[: len(module.package.split(".")) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    if base not in modules:
        return set()
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}


def import_graph(modules: dict[str, Module], *, root: str) -> dict[str, dict[str, int]]:
    """``graph[a][b]``: the first line of ``a`` that imports ``b``; the root package is left out on both sides."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules if name != root}
    for name in graph:
        for node in _import_nodes(modules[name].tree):
            for target in _imported(node, modules[name], modules) - {root, name}:
                graph[name][target] = min(graph[name].get(target, node.lineno), node.lineno)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components of more than one module, each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
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
                        components.append(sorted(component))
    return sorted(components)


def shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, found breadth-first inside the component."""
    start, inside = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node]):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if successor in inside and successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")  # a component of 2+ always has one


def describe_cycles(modules: dict[str, Module], *, root: str) -> list[str]:
    """One line per tangle of modules: a shortest cycle in it, each step with the line that imports the next
    module; when the tangle holds more modules than that cycle, a second line lists them all."""
    graph = import_graph(modules, root=root)
    lines = []
    for component in strongly_connected(graph):
        cycle = shortest_cycle(graph, component)
        steps = [f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        lines.append(f"{len(component)} modules: {' -> '.join([*steps, cycle[-1]])}")
        if len(component) > len(cycle) - 1:
            lines.append(f"    all of them: {', '.join(component)}")
    return lines


# -- sizes -------------------------------------------------------------------------------------------------------
def long_modules(modules: dict[str, Module], *, limit: int) -> list[str]:
    counts = {m.file: len(m.path.read_text(encoding="utf-8").splitlines()) for m in modules.values()}
    return [f"{file}: {n} lines" for file, n in sorted(counts.items()) if n > limit]


def long_functions(modules: dict[str, Module], *, limit: int) -> list[str]:
    found = []
    for module in sorted(modules.values(), key=lambda m: m.file):
        for qualname, node in _functions(module.tree, prefix=""):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                found.append(f"{module.file}:{node.lineno} {qualname}: {lines} lines")
    return found


def _functions(node: ast.AST, *, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, prefix=f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix=f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix=prefix)


# -- the tests ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return read_modules(SRC, PACKAGE)


def test_no_import_cycles(modules: dict[str, Module]) -> None:
    _fail_listing(
        "import cycles between labelwise modules (a (line n) -> b: line n of a imports b)",
        describe_cycles(modules, root=PACKAGE),
    )


def test_no_module_over_the_line_limit(modules: dict[str, Module]) -> None:
    _fail_listing(
        f"modules over {MAX_MODULE_LINES} lines (split by idea)", long_modules(modules, limit=MAX_MODULE_LINES)
    )


def test_no_function_over_the_line_limit(modules: dict[str, Module]) -> None:
    _fail_listing(
        f"functions over {MAX_FUNCTION_LINES} lines (make them pipelines of named stages)",
        long_functions(modules, limit=MAX_FUNCTION_LINES),
    )


def _fail_listing(what: str, offenders: list[str]) -> None:
    if offenders:
        pytest.fail(f"{what}:\n  " + "\n  ".join(offenders), pytrace=False)


# -- the checks themselves, on a package written for the purpose ---------------------------------------------------
def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg import a\n",  # the root package: left out
        "a.py": "from pkg.sub import b\n",
        "sub/__init__.py": "",
        # a deferred import counts; so does a relative one
        "sub/b.py": "def f():\n    from .. import c\n    return c\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\nelse:\n    import pkg.a\n",
        "d.py": "import pkg.c\n" + "x = 1\n" * 5,  # d -> c only: c imports d for type checking alone
        "e.py": "class K:\n    def m(self):\n" + "        y = 1\n" * 4 + "def g():\n    pass\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    found = read_modules(tmp_path, "pkg")
    assert describe_cycles(found, root="pkg") == [
        "3 modules: pkg.a (line 1) -> pkg.sub.b (line 2) -> pkg.c (line 5) -> pkg.a"
    ]
    assert long_modules(found, limit=5) == ["pkg/d.py: 6 lines", "pkg/e.py: 8 lines"]
    assert long_functions(found, limit=4) == ["pkg/e.py:2 K.m: 5 lines"]
