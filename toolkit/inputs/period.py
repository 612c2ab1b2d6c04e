"""The period a run covers, as readers see it in lists and file names (``2026-W47``).

The spec says how to write it: ``period: "{week:%G-W%V}"`` is a :meth:`str.format` template over
the run's typed parameter values (a ``datetime.date`` takes ``strftime`` codes). Fields name
parameters and nothing else: no attribute or index access (``{week.year}``, ``{x[0]}``). Without a
template the label is the first header parameter's value. The label is made once, when the run is
prepared, and kept in ``run.json``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["fields", "period_label"]

_MAX = 120  # the portal keeps at most this many characters


def fields(template: str) -> list[str]:
    """The parameter names ``template`` uses; ValueError for malformed or non-name fields."""
    names = []
    for _literal, field, _spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(f"{{{field}}}: a field names one parameter (no '.', '[', or position)")
        if conversion is not None:
            raise ValueError(f"{{{field}!{conversion}}}: no conversions; use a format spec after ':'")
        names.append(field)
    return names


def period_label(template: str | None, values: Mapping[str, Any], header_parameters: Iterable[str]) -> str:
    """The label for a run with these typed ``values``."""
    if template:
        text = template.format_map({name: values[name] for name in fields(template)})
    else:
        text = next((str(values[name]) for name in header_parameters if name in values), "")
    return " ".join(text.split())[:_MAX]
