"""Variants and search text: what a publication is filed and found under.

A report may have variants (the grid keys its spec names in ``variant_by``): a run's variant is
``{"region": "north"}`` and its label the values in that order joined by `` · `` ("north").
Versions count re-publications of one (report, variant label, period).

Search matches a lower-cased ``search_text`` stored at publish time: the period label, the
variant label, the parameter values readers see, and the ISO week of each date among them, so
``2026-W47`` finds a run whose ``week`` is 2026-11-16. A query that is a date is widened to its
ISO week too (:func:`query_terms`), so ``2026-11-18`` finds the ``2026-W47`` period.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LABEL_SEPARATOR", "LABEL_MAX", "variant_label", "search_text", "query_terms"]

LABEL_SEPARATOR = " · "
LABEL_MAX = 200
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")  # at the start of an ISO date or date-time
_VALUE_MAX = 200  # characters of one parameter value kept for search: names and dates, not documents
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # PostgreSQL refuses NUL in text; none belongs in a search word


def variant_label(variant: Mapping[str, str]) -> str:
    """``{"region": "north", "unit": "kg"}`` -> ``"north · kg"`` (declared order); ``{}`` -> ``""``."""
    return LABEL_SEPARATOR.join(" ".join(str(v).split()) for v in variant.values())


def iso_week(text: str) -> str | None:
    """``2026-11-18`` (or a date-time starting so) -> ``2026-W47``; None when ``text`` is no date."""
    found = _DATE.match(text.strip())
    if not found:
        return None
    try:
        year, week, _ = dt.date(*map(int, found.groups())).isocalendar()
    except ValueError:
        return None
    return f"{year}-W{week:02d}"


def _scalars(value: Any) -> Iterable[str]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        yield " ".join(_CONTROL.sub(" ", str(value)[:_VALUE_MAX]).split())


def search_text(period_label: str, label: str, parameters: Mapping[str, Any]) -> str:
    """The lower-cased words a publication is found by (one per line, no duplicates)."""
    words = [period_label, label]
    for value in parameters.values():
        for text in _scalars(value):
            words.append(text)
            week = iso_week(text)
            if week:
                words.append(week)
    return "\n".join(dict.fromkeys(w.lower() for w in words if w))


def query_terms(query: str) -> list[str]:
    """What a search for ``query`` matches (lower-cased): itself, and its ISO week when it is a date."""
    words = " ".join(query.split()).lower()
    if not words:
        return []
    week = iso_week(words) if _DATE.fullmatch(words) else None
    return [words, week.lower()] if week else [words]
