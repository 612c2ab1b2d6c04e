"""A table's cells as the PDF shows them, and which columns are numbers.

Numbers keep the notebook's precision: a float column is written as pandas shows it in the
notebook (its repr: ``1.7``, ``0.125``, the same decimals down a column), with thousands
separators added; integer columns are grouped (``1,234``). A column's format (the spec's
``tables: {name: {formats: {col: "{:,.2f}"}}}``, else ``tk.table(..., formats=...)``) replaces
that. Separators, decimal mark and minus sign are then the locale's (:mod:`.locale`).

Number columns (integers, floats, complex, dates and durations) are right-aligned in the PDF,
every other column (text, categories, booleans) left-aligned: :func:`is_number` decides,
:mod:`.html` marks the cells.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from ..errors import RenderError
from .locale import ReportLocale

__all__ = ["NA", "check_format", "is_number", "shown_cells"]

NA = "–"  # a missing cell
_PLAIN = re.compile(r"(-?)(\d+)(\.\d*)?")


def check_format(text: str) -> str:
    """A column's format: a Python format string with one ``{}`` field (``"{:,.2f} €"``), or its
    spec alone (``",.2f"``). Returns the format string; ValueError when it is not one."""
    if "{" not in text:
        text = "{:" + text + "}"
    try:
        fields = [f for f in string.Formatter().parse(text) if f[1] is not None]
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a format string ({exc})") from None
    if len(fields) != 1 or fields[0][1] != "" or fields[0][3] is not None:
        raise ValueError(f"{text!r} must have exactly one field, {{}} or {{:spec}}, e.g. \"{{:,.2f}}\"")
    return text


def is_number(dtype) -> bool:
    return dtype.kind in "iufcmM"


def _grouped(text: str) -> str:
    """``12345.678`` -> ``12,345.678``; anything else (``1.2e+08``, ``inf``) as it is."""
    match = _PLAIN.fullmatch(text)
    if match is None:
        return text
    sign, digits, decimals = match.groups()
    return f"{sign}{int(digits):,}{decimals or ''}"


def _formatted(values, missing, fmt: str, locale: ReportLocale, where: str) -> list[str]:
    # The format's own words stay as written; only the number it makes gets the locale's symbols.
    parts = list(string.Formatter().parse(fmt))
    before, _, spec, _ = parts[0]
    after = "".join(literal for literal, *_ in parts[1:])
    out = []
    for value, absent in zip(values, missing):
        if absent:
            out.append(NA)
            continue
        try:
            number = format(value, spec)
        except (ValueError, TypeError) as exc:
            raise RenderError(f"{where}: format {fmt!r} cannot show {value!r} ({exc})") from None
        out.append(f"{before}{locale.symbols(number)}{after}")
    return out


def _as_notebook(series, missing, locale: ReportLocale) -> list[str]:
    if series.dtype.kind in "iu":  # nullable Int64 too
        return [NA if absent else locale.integer(int(v)) for v, absent in zip(series.tolist(), missing)]
    # pandas' own repr of the column: the notebook's precision, the same decimals down the column
    texts = series.reset_index(drop=True).to_string(index=False, header=False, na_rep=NA).splitlines()
    return [locale.symbols(_grouped(t.strip())) for t in texts]


def shown_cells(frame, locale: ReportLocale, formats: Mapping[str, str], table: str):
    """``frame`` with its number columns and formatted columns as the PDF's text; others as they are."""
    unknown = sorted(set(formats) - set(map(str, frame.columns)))
    if unknown:
        raise RenderError(f"table {table!r}: formats name no column {', '.join(map(repr, unknown))} "
                          f"(columns: {', '.join(map(str, frame.columns))})")
    shown = frame.copy(deep=False)
    if frame.empty:
        return shown
    for position, (name, dtype) in enumerate(frame.dtypes.items()):
        column = frame.iloc[:, position]
        missing = column.isna().tolist()
        if str(name) in formats:
            texts = _formatted(column.tolist(), missing, formats[str(name)], locale, f"table {table!r} column {name!r}")
        elif dtype.kind in "iuf":
            texts = _as_notebook(column, missing, locale)
        else:
            continue
        shown.isetitem(position, texts)
    return shown
