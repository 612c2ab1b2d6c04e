"""The portal's shape: the error tree drawn in publish_server/errors.py is the one in the code."""

from __future__ import annotations

import importlib
import pkgutil
import re

import publish_server
from publish_server import errors

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
