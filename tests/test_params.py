"""The parameter schema is read without a kernel and values are checked, never evaluated."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import make_notebook
from toolkit.errors import NotebookError, ParameterError
from toolkit.inputs.params import read_schema

CELL = """
import datetime
import typing
from typing import Literal, Optional
week: datetime.date = datetime.date(2026, 11, 16)  # Monday of the week
at: datetime.datetime = datetime.datetime.fromisoformat("2026-11-16T08:30:00")
sources: list[str] = ["web", "api"]
sizes: list[int] = [1, 2]
status: Literal["all", "ok", "error"] = "all"
level: typing.Literal[1, 2, 3] = 1
top_n: int = 10
ratio: float = 0.5
flag: bool = False
name: str
limit: Optional[int] = None
cutoff: float | None = None
untyped = "hello"
"""


@pytest.fixture
def schema(tmp_path):
    return read_schema(make_notebook(tmp_path / "nb.ipynb", CELL))


def test_schema_reads_types_defaults_and_help(schema):
    kinds = {p.name: p.type.describe() for p in schema.parameters}
    assert kinds == {
        "week": "date", "at": "datetime", "sources": "list[str]", "sizes": "list[int]",
        "status": "one of 'all', 'ok', 'error'", "level": "one of 1, 2, 3", "top_n": "int",
        "ratio": "float", "flag": "bool", "name": "str", "limit": "int or None",
        "cutoff": "float or None", "untyped": "str",
    }
    assert schema["week"].default == dt.date(2026, 11, 16)
    assert schema["week"].help == "Monday of the week"
    assert schema["at"].default == dt.datetime(2026, 11, 16, 8, 30)
    assert schema["name"].required and not schema["top_n"].required
    assert schema["limit"].default is None


@pytest.mark.parametrize(
    "assignment, expected",
    [
        ("week=2026-11-09", dt.date(2026, 11, 9)),
        ("at=2026-11-09T10:00:00", dt.datetime(2026, 11, 9, 10)),
        ("sources=web, mobile", ["web", "mobile"]),
        ('sources=["a,b", "c"]', ["a,b", "c"]),
        ("sources=", []),
        ("sizes=3,4", [3, 4]),
        ("status=error", "error"),
        ("level=2", 2),
        ("top_n=-5", -5),
        ("ratio=1e-3", 0.001),
        ("flag=yes", True),
        ("flag=0", False),
        ("name=__import__('os').system('false')", "__import__('os').system('false')"),
        ("limit=none", None),
        ("limit=7", 7),
    ],
)
def test_command_line_values_are_parsed_per_type(schema, assignment, expected):
    name = assignment.split("=")[0]
    assert schema.parse_assignments([assignment])[name] == expected


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("top_n=abc", "parameter 'top_n': got 'abc', expected int"),
        ("top_n=1.5", "parameter 'top_n': got '1.5', expected int"),
        ("top_n=__import__('os')", "expected int"),
        ("ratio=nan", "parameter 'ratio': got 'nan', expected float"),
        ("flag=maybe", "expected bool"),
        ("week=last monday", "parameter 'week': got 'last monday', expected date"),
        ("week=2026-02-30", "expected date"),
        ("status=warning", "expected one of 'all', 'ok', 'error'"),
        ("level=4", "expected one of 1, 2, 3"),
        ("sizes=1,x", "parameter 'sizes': got 'x', expected int"),
        ("nope=1", "parameter 'nope': unknown parameter (known: week, at"),
        ("top_n", "expected name=value"),
    ],
)
def test_bad_command_line_values_are_refused_with_one_line(schema, assignment, message):
    with pytest.raises(ParameterError) as info:
        schema.parse_assignments([assignment])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_resolve_needs_required_values_and_layers_later_wins(schema):
    with pytest.raises(ParameterError, match="parameter 'name': missing required value"):
        schema.resolve({})
    values = schema.resolve({"name": "spec", "top_n": 3}, {"name": "cli"})
    assert values["name"] == "cli" and values["top_n"] == 3 and values["sources"] == ["web", "api"]


@pytest.mark.parametrize(
    "value, problem",
    [({"top_n": True}, "expected int"), ({"top_n": "7"}, None), ({"week": dt.datetime(2026, 1, 1)}, "expected date"),
     ({"sources": "a,b"}, None), ({"sources": [1, 2]}, "expected str"), ({"name": 5}, "expected str")],
)
def test_yaml_values_are_type_checked(schema, value, problem):
    layer = {"name": "x", **value}
    if problem is None:
        schema.resolve(layer)
    else:
        with pytest.raises(ParameterError, match=problem):
            schema.resolve(layer)


@pytest.mark.parametrize(
    "cell, message",
    [
        ("x: dict = {}", "unsupported annotation for 'x': dict"),
        ("x: int = 'three'", "default of 'x' does not match its type"),
        ("x = compute()", "must be a literal"),
        ("x: int = 1 +", "parameters cell line 1"),
        ("x = []", "cannot infer the type of 'x'"),
        ("x: list[list[int]] = []", "unsupported annotation"),
    ],
)
def test_bad_parameters_cells_are_reported(tmp_path, cell, message):
    with pytest.raises(NotebookError, match=message):
        read_schema(make_notebook(tmp_path / "nb.ipynb", cell))


def test_notebook_without_parameters_cell(tmp_path):
    path = make_notebook(tmp_path / "nb.ipynb", None, "x = 1")
    schema = read_schema(path)
    assert not schema.tagged and schema.parameters == () and schema.resolve() == {}  # runs as it is
    with pytest.raises(NotebookError, match="cannot set 'x': no cell tagged 'parameters'; add the tag"):
        schema.parse_assignments(["x=2"])


def test_notebook_that_is_not_json(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(NotebookError, match="not a valid notebook"):
        read_schema(path)
