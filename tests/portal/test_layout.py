"""The portal's shape: imports at module level, the sign-in package apart from the rest, and the
error tree drawn in errors.py is the one in the code. (No import loops and modules of a readable
size: tests/test_architecture.py, for both packages.)"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import publish_server
from publish_server import errors
from tests.test_architecture import import_graph

PACKAGE = Path(publish_server.__file__).parent

# Imports that stay inside a function, each with the reason in a comment next to it.
FUNCTION_LEVEL_IMPORTS = {
    ("publish_server.processes", "gunicorn.config"),
    # boto3 is the optional `scale` extra: imported only when FILES_URL names object storage.
    ("publish_server.s3_store", "boto3"), ("publish_server.s3_store", "botocore.config"),
    ("publish_server.s3_store", "botocore.exceptions"),
}


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue  # Alembic's scripts, run by flask-migrate, not imported by the portal
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_imports_are_at_module_level_but_the_listed_ones():
    inside = set()
    for name, (_path, tree) in _modules().items():
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                if isinstance(node, ast.Import):
                    inside |= {(name, alias.name) for alias in node.names}
                else:
                    inside.add((name, "." * node.level + (node.module or "")))
    assert inside == FUNCTION_LEVEL_IMPORTS


def test_sign_in_imports_neither_the_publications_side_nor_admin_nor_the_app():
    graph = import_graph("publish_server", module_level=True)
    outside = {"publish_server.app", "publish_server.admin", "publish_server.pages", "publish_server.api",
               "publish_server.publishing", "publish_server.access", "publish_server.storage"}
    for name, targets in graph.items():
        if name.startswith("publish_server.signin"):
            assert not {t for t in targets if t in outside or t.startswith("publish_server.admin.")}, name


_NODE = re.compile(r"^(?P<indent>(?:│   |    )*)(?:(?:├── |└── )(?P<child>))?(?P<name>[A-Z]\w*)\s+(?P<note>.*)$")


def _drawn_tree() -> dict[str, tuple[str | None, str]]:
    """{class name: (parent name, note)} from the drawing in the module docstring."""
    lines = errors.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("PortalError"))
    drawn: dict[str, tuple[str | None, str]] = {}
    path: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        match = _NODE.match(line[4:])
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match["indent"]) // 4 + (1 if match["child"] is not None else 0)
        del path[depth:]
        drawn[match["name"]] = (path[-1] if path else None, match["note"])
        path.append(match["name"])
    return drawn


def _defined_in_errors() -> dict[str, type]:
    return {name: value for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == errors.__name__}


def test_the_drawn_error_tree_is_the_classes_of_errors_py():
    drawn = _drawn_tree()
    classes = _defined_in_errors()
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        parent = cls.__bases__[0]
        assert len(cls.__bases__) == 1, name
        assert drawn[name][0] == (None if parent is Exception else parent.__name__), name
        status = re.match(r"(\d{3})\b", drawn[name][1])
        if status:
            assert int(status[1]) == cls.status, name


def test_every_portal_error_class_is_in_errors_py():
    for info in pkgutil.walk_packages(publish_server.__path__, "publish_server."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found, todo = set(), [errors.PortalError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.add(sub)
            todo.append(sub)
    elsewhere = {f"{cls.__module__}.{cls.__name__}" for cls in found if cls.__module__ != errors.__name__}
    assert elsewhere == {"publish_server.processes.StartUpError"}  # named under the drawing, with the reason
