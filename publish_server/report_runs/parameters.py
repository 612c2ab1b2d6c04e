"""The toolkit's parameter rules, read from a report's schema JSON (``ReportProfile.parameters``).

A copy of ``toolkit/inputs/params.py``'s ``ParamType.parse_text`` / ``coerce`` with the same
accepted values and the same messages (the portal never imports the toolkit;
tests/test_run_parameters_contract.py holds the two side by side). Values come out JSON-typed:
dates and datetimes as ISO strings, which is how ``RunRequest.parameters`` stores them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, ParameterRejected

__all__ = ["ValueType", "SchemaParameter", "read_schema", "parameter_message", "resolve"]

KINDS = {"str", "int", "float", "bool", "date", "datetime", "list", "literal"}
_INT_RE = re.compile(r"[+-]?\d+")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parameter_message(name: str, given: object, expected: str, problem: str | None = None) -> str:
    """The toolkit's ``ParameterError`` text, word for word."""
    if problem:
        return f"parameter '{name}': {problem}"
    return f"parameter '{name}': got {given!r}, expected {expected}"


def _refuse(name: str, given: object, expected: str, problem: str | None = None) -> ParameterRejected:
    return ParameterRejected(parameter_message(name, given, expected, problem), name=name)


@dataclass(frozen=True)
class ValueType:
    """A parameter's type from the schema JSON: ``{"kind", "optional", "item"?, "choices"?}``."""

    kind: str
    item: ValueType | None = None
    choices: tuple[Any, ...] = ()
    optional: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValueType:
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown parameter kind {kind!r}")
        item = cls.from_json(data["item"]) if kind == "list" else None
        return cls(kind, item=item, choices=tuple(data.get("choices") or ()), optional=bool(data.get("optional")))

    def describe(self) -> str:
        if self.kind == "list":
            text = f"list[{self.item.describe()}]"
        elif self.kind == "literal":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = self.kind
        return f"{text} or None" if self.optional else text

    def parse_text(self, name: str, text: str) -> Any:
        """A form field's text (the toolkit's ``-p name=value``) as a JSON value of this type."""
        if self.optional and text.strip().lower() in {"none", "null"}:
            return None
        if self.kind == "list":
            stripped = text.strip()
            if stripped.startswith("["):
                try:
                    items = json.loads(stripped)
                except json.JSONDecodeError:
                    raise _refuse(name, text, self.describe()) from None
                if not isinstance(items, list):
                    raise _refuse(name, text, self.describe())
                return [self.item.coerce(name, v) for v in items]
            parts = [p.strip() for p in stripped.split(",")] if stripped else []
            return [self.item.parse_text(name, p) for p in parts]
        if self.kind == "literal":
            for choice in self.choices:
                if text == str(choice):
                    return choice
            raise _refuse(name, text, self.describe())
        return self._parse_scalar(name, text)

    def _parse_scalar(self, name: str, text: str) -> Any:
        kind = self.kind
        try:
            if kind == "str":
                return text
            if kind == "int" and _INT_RE.fullmatch(text.strip()):
                return int(text)
            if kind == "float":
                value = float(text)
                if math.isfinite(value):
                    return value
            if kind == "bool" and text.strip().lower() in _TRUE | _FALSE:
                return text.strip().lower() in _TRUE
            if kind == "date":
                return dt.date.fromisoformat(text.strip()).isoformat()
            if kind == "datetime":
                return dt.datetime.fromisoformat(text.strip()).isoformat()
        except ValueError:
            pass
        raise _refuse(name, text, self.describe())

    def coerce(self, name: str, value: Any) -> Any:
        """A JSON value (an API body, a schema default) checked against this type."""
        if value is None:
            if self.optional:
                return None
            raise _refuse(name, value, self.describe())
        kind = self.kind
        if isinstance(value, str) and kind not in {"str", "literal"}:
            return self.parse_text(name, value)
        if kind == "list" and isinstance(value, (list, tuple)):
            return [self.item.coerce(name, v) for v in value]
        if kind == "literal" and value in self.choices and type(value) in {type(c) for c in self.choices}:
            return value
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        if kind == "bool" and isinstance(value, bool):
            return value
        raise _refuse(name, value, self.describe())


_NO_DEFAULT = object()


@dataclass(frozen=True)
class SchemaParameter:
    name: str
    label: str
    type: ValueType
    default: Any = _NO_DEFAULT  # a JSON value; absent when required

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


def read_schema(entries: list[dict[str, Any]] | None) -> list[SchemaParameter]:
    """The profile's parameter list (the toolkit sent it; the worker re-checks every value anyway).

    A list the portal cannot read (a kind it does not know: a newer toolkit) is a 409: nothing
    can be asked for until the worker describes the report again.
    """
    found = []
    try:
        for entry in entries or []:
            required = entry.get("required") or "default" not in entry
            found.append(SchemaParameter(
                name=str(entry["name"]), label=str(entry.get("label") or ""), type=ValueType.from_json(entry["type"]),
                default=_NO_DEFAULT if required else entry.get("default")))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise Conflict("This report's parameters cannot be read by the portal; its worker must describe it again.",
                       code="schema_unreadable") from None
    return found


def resolve(schema: list[SchemaParameter], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (JSON values by name) checked and merged over the defaults: every parameter's value.

    Unknown names and missing required values are refused with the toolkit's words
    (``Schema.check`` / ``Schema.resolve``).
    """
    known = {p.name: p for p in schema}
    values: dict[str, Any] = {}
    for name, value in given.items():  # in the order given, as the toolkit checks a layer
        if name not in known:
            names = ", ".join(known) or "none"
            raise _refuse(name, value, "", f"unknown parameter (known: {names})")
        values[name] = known[name].type.coerce(name, value)
    for param in schema:
        if param.name in values:
            continue
        if param.required:
            describe = param.type.describe()
            raise _refuse(param.name, None, describe, f"missing required value ({describe})")
        values[param.name] = param.default
    return {p.name: values[p.name] for p in schema}
    return values
