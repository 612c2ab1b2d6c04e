"""The run form's fields: drawn from every kind of the schema, and read back to the same values.

No database: the form is a function of the schema and what was submitted.
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from publish_server.report_runs.form_fields import fields_for, read_form
from publish_server.report_runs.parameters import read_schema
from tests.portal.run_helpers import SCHEMA


def _entry(name, kind, default, **extra):
    return {"name": name, "label": "", "type": {"kind": kind, "optional": extra.pop("optional", False), **extra},
            "required": False, "default": default}


EVERY_KIND = read_schema([e for e in SCHEMA if e["name"] != "title"] + [
    _entry("flag", "literal", True, choices=[True]),
    _entry("maybe", "bool", None, optional=True),
    _entry("weeks", "list", ["2026-11-16", "2026-11-23"], item={"kind": "date", "optional": False}),
    _entry("none_yet", "list", [], item={"kind": "int", "optional": False}),
    _entry("when", "datetime", "2026-11-16T06:00:00+01:00"),
    _entry("pick", "literal", None, choices=["a", "b"], optional=True),
])


def _submitted(fields) -> MultiDict:
    """What a browser sends for the form as drawn (an unticked box sends nothing)."""
    form = MultiDict()
    for f in fields:
        if f.widget == "checkbox":
            if f.checked:
                form.add(f.name, "true")
        elif f.widget == "select_multiple":
            for value in f.selected:
                form.add(f.name, value)
        else:
            form.add(f.name, f.value)
    return form


def test_a_form_sent_as_drawn_asks_for_the_defaults():
    values, errors = read_form(EVERY_KIND, _submitted(fields_for(EVERY_KIND)))
    assert errors == {}
    assert values == {p.name: p.default for p in EVERY_KIND}


def test_widgets_follow_the_kinds():
    widgets = {f.name: (f.widget, f.input_type, f.step) for f in fields_for(EVERY_KIND)}
    assert widgets["week"] == ("input", "date", "") and widgets["since"] == ("input", "datetime-local", "1")
    assert widgets["top"] == ("input", "number", "1") and widgets["threshold"] == ("input", "number", "any")
    assert widgets["regions"][0] == "select_multiple" and widgets["unit"][0] == "select" and widgets["flag"][0] == "select"
    assert widgets["detailed"][0] == "checkbox" and widgets["maybe"][0] == "select"  # an optional bool can be none
    assert widgets["weeks"] == ("input", "text", "") and widgets["when"][1] == "text"  # an offset does not fit datetime-local


@pytest.mark.parametrize("name, typed, message", [
    ("week", "2026-02-30", "parameter 'week': got '2026-02-30', expected date"),
    ("top", "ten", "parameter 'top': got 'ten', expected int"),
    ("threshold", "inf", "parameter 'threshold': got 'inf', expected float or None"),
    ("weeks", "2026-11-16, 2026-13-01", "parameter 'weeks': got '2026-13-01', expected date"),
    ("unit", "1000", "parameter 'unit': got '1000', expected one of 1, 10, 100"),
    ("top", "", "parameter 'top': got '', expected int"),
])
def test_a_refused_value_keeps_what_was_typed(name, typed, message):
    form = _submitted(fields_for(EVERY_KIND))
    form.setlist(name, [typed])
    _, errors = read_form(EVERY_KIND, form)
    assert errors == {name: message}
    shown = {f.name: f for f in fields_for(EVERY_KIND, form, errors)}[name]
    assert shown.error == message and (shown.value == typed)
