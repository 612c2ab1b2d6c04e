"""Parameter grids: one report, every combination of a few parameter values.

A grid maps parameter names to the values to run (``region: [north, south]``) or to a relative
date range (``week: last 4``). Relative ranges are resolved against an *as-of* date, so a batch
or a scheduled run is reproducible: ``nbpress run --as-of 2026-11-23`` always means the same
weeks, and the scheduler passes the day a job fired (in the schedule's time zone).

``last N [weeks|days|months]`` (weeks when the unit is left out) means the N most recent
periods that *ended before* the as-of day, oldest first, each given by its first day:

- weeks: ISO weeks (Monday to Sunday), given by their Monday. As of Monday 2026-11-23,
  ``last 2`` is 2026-11-09 and 2026-11-16; as of Sunday 2026-11-22 the week of the 16th has
  not ended yet, so ``last 2`` is 2026-11-02 and 2026-11-09.
- days: the N days before the as-of day.
- months: first days of the N calendar months before the as-of day's month.

Members are the Cartesian product in the grid's key order, last key varying fastest.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError

__all__ = ["RelativeDates", "parse_grid_value", "parse_grid_option", "expand", "resolve_values", "member_label"]

_RELATIVE = re.compile(r"^\s*last\s+(\d{1,3})(?:\s+(weeks?|days?|months?))?\s*$", re.IGNORECASE)
MAX_MEMBERS = 10_000  # a typo such as `last 999 days` x 3 keys should not queue a month of work


class RelativeDates(str):
    """``last N [unit]`` as written; resolved to dates by :meth:`resolve`."""

    def __new__(cls, text: str):
        match = _RELATIVE.match(text)
        if not match:
            raise ValueError(f"expected 'last N', 'last N weeks', 'last N days' or 'last N months', got {text!r}")
        self = super().__new__(cls, " ".join(text.split()).lower())
        self.count = int(match.group(1))
        self.unit = (match.group(2) or "weeks").lower().rstrip("s")
        if not 1 <= self.count <= 520:
            raise ValueError(f"{text!r}: N must be between 1 and 520")
        return self

    @classmethod
    def match(cls, text: object) -> bool:
        return isinstance(text, str) and bool(_RELATIVE.match(text))

    def resolve(self, as_of: dt.date) -> list[dt.date]:
        n = self.count
        if self.unit == "day":
            return [as_of - dt.timedelta(days=k) for k in range(n, 0, -1)]
        if self.unit == "week":
            this_monday = as_of - dt.timedelta(days=as_of.weekday())
            return [this_monday - dt.timedelta(weeks=k) for k in range(n, 0, -1)]
        firsts, year, month = [], as_of.year, as_of.month
        for _ in range(n):
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
            firsts.append(dt.date(year, month, 1))
        return firsts[::-1]


def parse_grid_value(value: Any) -> list[Any] | RelativeDates:
    """A spec's grid value: a non-empty list of values, or ``last N ...``."""
    if isinstance(value, str):
        return RelativeDates(value)
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("a grid needs at least one value")
        values = list(value)
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ValueError("a value is listed twice")
        return values
    raise ValueError(f"expected a list of values or 'last N', got {type(value).__name__}")


def parse_grid_option(item: str) -> tuple[str, list[str] | RelativeDates | list[Any]]:
    """``--grid key=a,b,c`` / ``--grid week='last 4'`` / ``--grid 'sources=[["web"],["api"]]'``.

    Values stay text (each is parsed with the parameter's type later), except a JSON list.
    """
    name, sep, text = item.partition("=")
    name, text = name.strip(), text.strip()
    if not sep or not name or not text:
        raise UsageError(f"--grid: expected NAME=VALUE,VALUE... or NAME='last N', got {item!r}")
    if RelativeDates.match(text):
        return name, RelativeDates(text)
    if text.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            raise UsageError(f"--grid {name}: not a JSON list: {text!r}") from None
        if not isinstance(values, list) or not values:
            raise UsageError(f"--grid {name}: expected a non-empty JSON list")
        return name, values
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise UsageError(f"--grid {name}: no values")
    return name, list(dict.fromkeys(values))


def resolve_values(grid: Mapping[str, Any], as_of: dt.date) -> dict[str, list[Any]]:
    """Relative date ranges -> dates; lists unchanged."""
    return {k: (v.resolve(as_of) if isinstance(v, RelativeDates) else list(v)) for k, v in grid.items()}


def expand(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, as parameter dicts; an empty grid is one member with no values."""
    keys = list(grid)
    size = 1
    for key in keys:
        size *= len(grid[key])
    if size > MAX_MEMBERS:
        raise UsageError(f"the grid has {size:,} members (more than {MAX_MEMBERS:,}); narrow it")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def member_label(values: Mapping[str, Any]) -> str:
    """``region=north week=2026-11-16``: how a member is named in progress lines and summaries."""
    def text(v: Any) -> str:
        if isinstance(v, (dt.date, dt.datetime)):
            return v.isoformat()
        if isinstance(v, (list, tuple)):
            return ",".join(text(x) for x in v)
        return str(v)

    return " ".join(f"{k}={text(v)}" for k, v in values.items()) or "(defaults)"
