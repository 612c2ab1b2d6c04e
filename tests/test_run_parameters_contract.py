"""The portal checks run parameters with the toolkit's rules: same accepted values, same messages.

A corpus of values (text as a form sends it, JSON as the API sends it) goes through the
toolkit's ``ParamType`` and the portal's ``report_runs.parameters``; both must accept the same
values (the toolkit's as JSON) or refuse them with the same message.
"""

from __future__ import annotations

import math

import pytest

from publish_server.errors import ParameterRejected
from publish_server.report_runs import parameters as portal
from toolkit.errors import ParameterError
from toolkit.inputs.params import ParamType, to_jsonable

TYPES = {
    "str": ParamType("str"),
    "int": ParamType("int"),
    "float": ParamType("float"),
    "bool": ParamType("bool"),
    "date": ParamType("date"),
    "datetime": ParamType("datetime"),
    "optional int": ParamType("int", optional=True),
    "optional date": ParamType("date", optional=True),
    "list[int]": ParamType("list", item=ParamType("int")),
    "list[date]": ParamType("list", item=ParamType("date")),
    "literal str": ParamType("literal", choices=("north", "south")),
    "literal int": ParamType("literal", choices=(1, 2, 10)),
    "literal bool": ParamType("literal", choices=(True,)),
    "list[literal]": ParamType("list", item=ParamType("literal", choices=("north", "south"))),
    "optional literal": ParamType("literal", choices=("a", "b"), optional=True),
}

TEXTS = ["", " ", "0", "1", "-3", "+7", "1.5", "1e3", "nan", "inf", "-inf", "NaN", "yes", "no", "Off", "on", "TRUE", "maybe",
         "2026-02-28", "2026-02-30", "2026-13-01", "2026-W47", " 2026-11-16 ", "2026-11-16T06:00", "2026-11-16T06:00:00+01:00",
         "2026-11-16 25:00", "none", "None", "null", "north", "North", "south,north", "north, south", "[]", "[1, 2]",
         "[\"north\"]", "[NaN]", "[1,", "{\"a\": 1}", "1,2,x", "10", "True", "a", "a,b", "\u00e9", "12345678901234567890"]
VALUES = [None, True, False, 0, 1, 2, 10, -1, 1.5, 2.0, math.nan, math.inf, "1", "2026-02-30", "2026-11-16", "north", "yes", "0",
          [], [1, 2], ["1", 2], [1, "x"], ["north"], ["north", "east"], [None], {"a": 1}, [[1]], "", 10**20]


def toolkit_answer(call):
    try:
        return "ok", to_jsonable(call())
    except ParameterError as exc:
        return "refused", str(exc)


def portal_answer(call):
    try:
        return "ok", call()
    except ParameterRejected as exc:
        return "refused", exc.message


def as_json(ptype: ParamType) -> dict:
    data = {"kind": ptype.kind, "optional": ptype.optional}
    if ptype.item is not None:
        data["item"] = as_json(ptype.item)
    if ptype.choices:
        data["choices"] = list(ptype.choices)
    return data


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b and type(a) is type(b) if not isinstance(a, list) else (
        isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b)))


@pytest.mark.parametrize("label", TYPES)
def test_text_values_get_the_same_answer(label):
    ours = portal.ValueType.from_json(as_json(TYPES[label]))
    for text in TEXTS:
        theirs = toolkit_answer(lambda: TYPES[label].parse_text("p", text))
        mine = portal_answer(lambda: ours.parse_text("p", text))
        assert theirs[0] == mine[0] and same(theirs[1], mine[1]), (label, text, theirs, mine)


@pytest.mark.parametrize("label", TYPES)
def test_json_values_get_the_same_answer(label):
    ours = portal.ValueType.from_json(as_json(TYPES[label]))
    for value in VALUES:
        theirs = toolkit_answer(lambda: TYPES[label].coerce("p", value))
        mine = portal_answer(lambda: ours.coerce("p", value))
        assert theirs[0] == mine[0] and same(theirs[1], mine[1]), (label, value, theirs, mine)


def test_describe_is_the_same_for_every_type():
    for ptype in TYPES.values():
        assert portal.ValueType.from_json(as_json(ptype)).describe() == ptype.describe()


def test_the_corpus_holds_both_answers():
    """Every kind is exercised with values both sides accept and values both refuse."""
    for label, ptype in TYPES.items():
        outcomes = {toolkit_answer(lambda: ptype.parse_text("p", t))[0] for t in TEXTS}
        assert outcomes == ({"ok"} if label == "str" else {"ok", "refused"}), label


def test_unknown_and_missing_names_read_like_the_toolkits():
    from toolkit.inputs.params import Parameter, Schema

    schema = Schema("nb.ipynb", (Parameter("week", ParamType("date")), Parameter("n", ParamType("int"), default=3)))
    entries = [{"name": "week", "label": "", "type": {"kind": "date", "optional": False}, "required": True},
               {"name": "n", "label": "", "type": {"kind": "int", "optional": False}, "required": False, "default": 3}]
    ours = portal.read_schema(entries)
    for given in ({"wek": "2026-11-16"}, {}, {"n": 4}, {"n": "x", "wek": 1}, {"week": "2026-11-16", "n": "5"}):
        theirs = toolkit_answer(lambda: {k: to_jsonable(v) for k, v in schema.resolve(given).items()})
        mine = portal_answer(lambda: portal.resolve(ours, given))
        assert theirs == mine, (given, theirs, mine)
