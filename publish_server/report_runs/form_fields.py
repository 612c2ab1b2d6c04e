"""The run form: the fields a report's parameter schema asks for, and reading them back.

One field per parameter, in the notebook's order: ``<input type=date>`` for a date,
``datetime-local`` for a datetime, a ``<select>`` for a literal, ``<select multiple>`` for a list
of literals, number inputs (step 1 for int, ``any`` for float), a checkbox for a bool, text
otherwise (a list of other items as comma-separated text, as ``-p`` takes it). Optional values
(``T | None``) are left empty for None. Submitted text is checked with the toolkit's rules
(:mod:`.parameters`); a refused value keeps what was typed and shows the toolkit's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from ..errors import ParameterRejected
from .parameters import SchemaParameter, ValueType, parameter_message

__all__ = ["FormField", "fields_for", "read_form"]

_NONE = "none"  # the option / text an optional value takes for None (the toolkit reads "none" so)


@dataclass
class FormField:
    name: str
    label: str
    widget: str  # input | checkbox | select | select_multiple
    input_type: str = "text"  # for widget "input": text | number | date | datetime-local
    step: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)  # (value, shown)
    value: str = ""  # the text shown (input), or the chosen value (select)
    selected: list[str] = field(default_factory=list)  # select_multiple
    checked: bool = False
    required: bool = False
    hint: str = ""  # the type in words
    error: str = ""

    @property
    def dom_id(self) -> str:
        return f"param-{self.name}"


def _text(value: Any) -> str:
    """A JSON value as the field shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _hint(vtype: ValueType) -> str:
    if vtype.kind == "list" and vtype.item.kind != "literal":
        return f"{vtype.item.describe()} values, separated by commas" + (" (empty: none)" if vtype.optional else "")
    if vtype.kind in {"int", "float", "str", "date", "datetime"} and vtype.optional:
        return "empty: none"
    return ""


def _field(param: SchemaParameter, raw: Any, error: str) -> FormField:
    """``raw``: the JSON default, or what was submitted (a str, or a list for a multiple select)."""
    vtype, kind = param.type, param.type.kind
    common = {"name": param.name, "label": param.label or param.name, "required": param.required, "error": error,
              "hint": _hint(vtype)}
    if kind == "bool" and not vtype.optional:
        return FormField(widget="checkbox", checked=raw is True or raw == "true", **common)
    if kind == "bool" or kind == "literal":
        # A literal's option is str(choice): the text the toolkit's parse_text matches (True -> "True").
        shown = str if kind == "literal" else _text
        choices = [(shown(c), shown(c)) for c in (vtype.choices if kind == "literal" else (True, False))]
        if vtype.optional:
            choices.insert(0, (_NONE, "(none)"))
        value = _NONE if raw is None and vtype.optional else raw if isinstance(raw, str) else shown(raw)
        return FormField(widget="select", choices=choices, value=value, **common)
    if kind == "list" and vtype.item.kind == "literal":
        chosen = raw if isinstance(raw, list) else []
        return FormField(widget="select_multiple", choices=[(str(c), str(c)) for c in vtype.item.choices],
                         selected=[str(c) for c in chosen], **common)
    input_type, step = {"int": ("number", "1"), "float": ("number", "any"), "date": ("date", ""),
                        "datetime": ("datetime-local", "1")}.get(kind, ("text", ""))
    value = raw if isinstance(raw, str) and error else _text(raw)
    if kind == "datetime" and not error and value and len(value) > 19:
        input_type = "text"  # an offset (+01:00) does not fit datetime-local: shown and edited as text
    return FormField(widget="input", input_type=input_type, step=step, value=value, **common)


def fields_for(schema: list[SchemaParameter], submitted: MultiDict | None = None,
               errors: dict[str, str] | None = None) -> list[FormField]:
    """The form's fields: defaults filled, or what was submitted (kept when refused)."""
    errors = errors or {}
    shown = []
    for param in schema:
        if submitted is None:
            raw = None if param.required else param.default
        elif param.type.kind == "list" and param.type.item.kind == "literal":
            raw = submitted.getlist(param.name)
            raw = [v for v in raw if isinstance(v, str)]
        elif param.type.kind == "bool" and not param.type.optional:
            raw = submitted.get(param.name) == "true"
        else:
            raw = submitted.get(param.name, "")
        shown.append(_field(param, raw, errors.get(param.name, "")))
    return shown


def read_form(schema: list[SchemaParameter], form: MultiDict) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted values as JSON, and the toolkit's message per refused field."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for param in schema:
        vtype = param.type
        try:
            if vtype.kind == "list" and vtype.item.kind == "literal":
                values[param.name] = [vtype.item.parse_text(param.name, v) for v in form.getlist(param.name)]
            elif vtype.kind == "bool" and not vtype.optional:
                values[param.name] = form.get(param.name) == "true"  # an unticked box sends nothing
            else:
                text = form.get(param.name, "")
                if text.strip() == "" and vtype.kind != "str":
                    if vtype.optional:
                        values[param.name] = None
                        continue
                    if param.required:
                        describe = vtype.describe()
                        errors[param.name] = parameter_message(param.name, None, describe, f"missing required value ({describe})")
                        continue
                values[param.name] = vtype.parse_text(param.name, text)
        except ParameterRejected as exc:
            errors[param.name] = exc.message
    return values, errors
