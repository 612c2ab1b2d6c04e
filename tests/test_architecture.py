"""The house rules of docs/architecture.md, checked on the source (``ast``; nothing is imported).

- the toolkit never imports the portal, nor the portal the toolkit: the HTTP API is the contract;
- module-level imports inside each package form no loop (``if TYPE_CHECKING:`` blocks excluded),
  and the imports kept inside functions close none either;
- no module of either package is over 500 lines;
- no module name is used by both packages (``errors``, ``settings``, ``cli`` and ``__init__`` may be);
- every toolkit folder is a package that setuptools finds (a wheel would miss it otherwise).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from tests.conftest import ROOT

PACKAGES = ("toolkit", "publish_server")
MAX_LINES = 500
NAMES_BOTH_MAY_USE = {"__init__", "errors", "settings", "cli"}


def _modules(package: str) -> dict[str, Path]:
    """Dotted name -> file, for every .py file under the package's folder."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = {name: path for package in PACKAGES for name, path in _modules(package).items()}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]):
    """Statements run when the module is imported: not inside functions, not under TYPE_CHECKING."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _module_level(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _module_level(getattr(node, field, None) or [])


def _imports(name: str, *, module_level: bool) -> set[str]:
    """Absolute names of what module ``name`` imports; ``from X import y`` gives ``X.y`` when
    that is a module, else ``X``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    nodes = _module_level(tree.body) if module_level else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".")
            else:
                base = node.module
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


@pytest.mark.parametrize(("package", "other"), [("toolkit", "publish_server"), ("publish_server", "toolkit")])
def test_the_packages_never_import_each_other(package, other):
    wrong = sorted(
        f"{name} imports {target}"
        for name in MODULES if name.split(".")[0] == package
        for target in _imports(name, module_level=False) if target.split(".")[0] == other
    )
    assert not wrong, f"{package} must talk to {other} over HTTP (or its command line), never by import: {wrong}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop as [a, b, ..., a], or None (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def import_graph(package: str, *, module_level: bool) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    names = [name for name in MODULES if name.split(".")[0] == package]
    return {name: {t for t in _imports(name, module_level=module_level) if t in MODULES and t != name}
            for name in names}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_loops(package):
    loop = find_cycle(import_graph(package, module_level=True))
    assert loop is None, "module-level import loop: " + " -> ".join(loop or [])


@pytest.mark.parametrize("package", PACKAGES)
def test_no_loop_hides_in_an_import_inside_a_function(package):
    """The imports functions keep on purpose (start-up time, a cheap notebook API) close no loop either."""
    loop = find_cycle(import_graph(package, module_level=False))
    assert loop is None, "import loop (counting imports inside functions): " + " -> ".join(loop or [])


def test_the_loop_finder_finds_loops():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


@pytest.mark.parametrize("package", ["toolkit", "publish_server"])
def test_no_module_is_over_500_lines(package):
    long = {str(path.relative_to(ROOT)): lines for name, path in MODULES.items() if name.split(".")[0] == package
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules (at most {MAX_LINES} lines): {long}"


def test_no_module_name_is_used_by_both_packages():
    def names(package: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, path in MODULES.items():
            if name.split(".")[0] == package and name != package:
                found.setdefault(path.stem if path.stem != "__init__" else path.parent.name, []).append(name)
        return found

    toolkit, portal = names("toolkit"), names("publish_server")
    both = sorted(set(toolkit) & set(portal) - NAMES_BOTH_MAY_USE)
    assert not both, f"module names in both packages (rename one side): {[(toolkit[n], portal[n]) for n in both]}"


def test_every_toolkit_folder_is_a_package_setuptools_finds():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = set(find_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ())))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "toolkit").rglob("*.py")}
    assert folders <= found, f"not packaged (no __init__.py?): {sorted(folders - found)}"


def test_the_error_tree_in_the_errors_docstring_is_the_class_tree():
    import inspect
    import re

    from toolkit import errors

    drawn, path = {}, []
    for line in errors.__doc__.splitlines():
        if match := re.match(r"^    ((?:[│ ]   )*)(?:[├└]── )?([A-Z][A-Za-z]*Error)\b", line):
            depth = len(match[1]) // 4 + ("──" in line)
            path = path[:depth] + [match[2]]
            drawn[match[2]] = path[-2] if depth else None
    classes = {name: cls for name, cls in vars(errors).items()
               if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__ == errors.__name__}
    real = {name: cls.__base__.__name__ if cls.__base__.__name__ in classes else None for name, cls in classes.items()}
    assert drawn == real
