"""Tables wider than the page: the rule that lays each one out, decided from estimated widths.

Nothing may run off the page. For each table, the first step of this rule that fits wins:

1. ``fits``: the table at the report's font (:data:`FONT_PT`) fits the content width; long text
   cells wrap (also inside long words and URLs).
2. ``smaller_font``: the largest font from 8 pt down to :data:`FLOOR_PT` (0.5 pt steps) at
   which it fits.
3. ``landscape``: the table's section on a landscape page (the CSS named page ``wide``), at the
   largest font from :data:`FONT_PT` down to :data:`FLOOR_PT` at which it fits.
4. ``column_groups``: at the report's font, on the report's own pages, several tables of as
   many columns as fit, each repeating the row labels (the index columns) and captioned
   "Columns 1–12 of 40".

Widths come from the fonts' advance widths (:mod:`.font_metrics`), the longest formatted cells
and the headers, plus the cells' padding: no trial layout, so a report of tables that fit
pays only the estimate (milliseconds). Every column needs its numbers and header words whole;
text columns may wrap down to :data:`WRAP_EM`. A table that fits on one line per cell keeps
the automatic layout; any other gets fixed column widths (``table-layout: fixed``), which
WeasyPrint keeps inside the page whatever the estimate missed, by wrapping.

Long tables (:mod:`.longtable`) never wrap (every row one line high), so for them a column
needs its longest cell whole; a long table some column of which cannot fit even alone at the
floor font in landscape is laid out in one piece instead (see :func:`plan_layout`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .font_metrics import AsciiBound, metrics
from .page_box import PageBox
from .template_folders import find_static

__all__ = ["FONT_PT", "FLOOR_PT", "Rule", "TableLayout", "plan_layout", "fonts_in"]

FONT_PT = 8.5  # table.data's font size in report.css
FLOOR_PT = 6.0  # smallest font a table is set in: still readable printed
STEP_PT = 0.5
PAD_EM = 2 * 0.667  # left + right cell padding in report.css (0.667em each side)
WRAP_EM = 12.0  # text columns wrap down to this width (about 22 characters), or their longest cell
SLACK = 1.04  # kerning and shaping the advance widths leave out, and rounding
_BOUND = AsciiBound()
_SAMPLES = 4  # longest cells (by characters) of a text column that are measured

Rule = Literal["fits", "smaller_font", "landscape", "column_groups"]


@dataclass(frozen=True)
class _Column:
    natural: float  # ems: the header and the longest cell on one line, plus padding
    least: float  # ems: the least it may get (numbers and header words whole; text wraps)


@dataclass(frozen=True)
class TableLayout:
    """How one table is laid out; ``groups`` holds the data columns' positions, one tuple per table."""

    rule: Rule
    font_pt: float
    groups: tuple[tuple[int, ...], ...]
    widths: tuple[tuple[float, ...], ...] | None  # per group, percent per column (index first); None: automatic
    columns: int

    @property
    def landscape(self) -> bool:
        return self.rule == "landscape"

    def summary(self) -> dict[str, Any]:
        """What ``run.json`` keeps under ``layout``."""
        return {"rule": self.rule, "font_pt": self.font_pt, "groups": len(self.groups), "columns": self.columns}


def fonts_in(templates_dir: Path) -> tuple[Path, Path]:
    """The regular and bold font files the report's stylesheet uses (the project's, else the built-in)."""
    return find_static(templates_dir, "fonts/DejaVuSans.ttf"), find_static(templates_dir, "fonts/DejaVuSans-Bold.ttf")


def plan_layout(frame, page: PageBox, fonts: tuple[Path, Path], *, wrap: bool = True,
                numeric: list[bool] | None = None) -> TableLayout | None:
    """The layout of ``frame`` (as shown: already cut at ``max_rows``) on ``page``.

    ``frame`` may hold the cells as the PDF shows them (:func:`.cells.shown_cells`); ``numeric``
    then says which columns are numbers (never wrapped), else their dtypes do.
    ``wrap=False`` (long tables): cells stay on one line. Returns None only then, when some
    column cannot fit even alone: the caller lays that table out as an ordinary table.
    """

    def room(box: PageBox, font: float) -> float:  # ems of content width
        return box.content_width / (font * SLACK)

    everything = tuple(range(frame.shape[1]))
    # Most tables fit even by an upper bound of their widths: no font file is read for them.
    for fonts_used in (lambda: (_BOUND, _BOUND), lambda: (metrics(fonts[0]), metrics(fonts[1]))):
        index, data = _measure(frame, *fonts_used(), wrap=wrap, numeric=numeric)
        columns = index + data
        if sum(c.natural for c in columns) <= room(page, FONT_PT):
            return TableLayout("fits", FONT_PT, (everything,), None, len(data))
    boxes = [("fits", page)] + ([] if page.is_landscape else [("landscape", page.landscape())])
    for rule, box in boxes:
        font = _largest_font(sum(c.least for c in columns), box)
        if font is not None:
            if rule == "fits" and font < FONT_PT:
                rule = "smaller_font"
            return TableLayout(rule, font, (everything,), (_percentages(columns, room(box, font)),), len(data))
    least_index = sum(c.least for c in index)
    available = room(page, FONT_PT)
    groups = _groups([c.least for c in data], available - least_index)
    if not wrap and any(least_index + sum(data[i].least for i in g) > room(page.landscape(), FLOOR_PT) for g in groups):
        return None  # a column too wide for any page: not laid out as a long table
    widths = tuple(_percentages(index + [data[i] for i in g], available) for g in groups)
    return TableLayout("column_groups", FONT_PT, tuple(groups), widths, len(data))


def _largest_font(ems: float, box: PageBox) -> float | None:
    """The largest font in :data:`STEP_PT` steps from :data:`FONT_PT` to :data:`FLOOR_PT` at which ``ems`` fit."""
    font = min(FONT_PT, math.floor(box.content_width / (ems * SLACK) / STEP_PT) * STEP_PT)
    return font if font >= FLOOR_PT else None


def _groups(widths: list[float], available: float) -> list[tuple[int, ...]]:
    """Consecutive columns packed into groups of at most ``available`` ems (at least one column each)."""
    groups, current, used = [], [], 0.0
    for i, width in enumerate(widths):
        if current and used + width > available:
            groups.append(tuple(current))
            current, used = [], 0.0
        current.append(i)
        used += width
    if current:
        groups.append(tuple(current))
    return groups


def _percentages(columns: list[_Column], available: float) -> tuple[float, ...]:
    """Fixed widths: every column its least, then wrapping columns share what is left, up to
    their natural width, in proportion to what they lack; any rest widens all columns alike."""
    widths = [c.least for c in columns]
    spare = available - sum(widths)
    lacking = [c.natural - c.least for c in columns]
    if spare > 0 and sum(lacking) > 0:
        share = min(1.0, spare / sum(lacking))
        widths = [w + share * lack for w, lack in zip(widths, lacking)]
    total = sum(widths)
    return tuple(100 * w / total for w in widths)


# --- Measuring columns ----------------------------------------------------------------------


def _measure(frame, regular, bold, *, wrap: bool, numeric: list[bool] | None = None) -> tuple[list[_Column], list[_Column]]:
    """The index (row label) columns and the data columns."""
    data = [_column(_header_texts(frame.columns[i]), frame.iloc[:, i], regular, bold, wrap=wrap,
                    number=None if numeric is None else numeric[i])
            for i in range(frame.shape[1])]
    return _index_columns(frame, bold, wrap), data


def _header_texts(label: Any) -> list[str]:
    return [str(part) for part in label] if isinstance(label, tuple) else [str(label)]


def _column(headers: list[str], values, font, header_font, *, wrap: bool, number: bool | None = None) -> _Column:
    cells = [font.width(text) for text in _widest_cells(values)]
    header = max((header_font.width(h) for h in headers), default=0.0)
    header_word = max((header_font.width(w) for h in headers for w in h.split()), default=0.0)
    longest = max(cells, default=0.0)
    natural = max(header, longest) + PAD_EM
    if not wrap:
        return _Column(natural, natural)
    text = (getattr(values, "dtype", None) is None or values.dtype.kind not in "iufcbmM") if number is None else not number
    least = max(min(header_word, WRAP_EM), min(longest, WRAP_EM) if text else longest) + PAD_EM
    return _Column(natural, min(least, natural))


def _index_columns(frame, font, wrap: bool) -> list[_Column]:
    """The row-label columns (tbody ``th``, bold); their header is the index name, or the
    columns' name that html.py moves into the header's corner."""
    names = list(frame.index.names)
    corner = [frame.columns.name] if frame.columns.name is not None and len(names) == 1 else []
    return [
        _column([str(n) for n in [name, *corner] if n is not None], frame.index.get_level_values(level), font, font, wrap=wrap)
        for level, name in enumerate(names)
    ]


def _widest_cells(values) -> list[str]:
    """The formatted cells that can be the widest: a numeric column's extremes (as html.py
    formats them), or a text column's longest few by characters."""
    import pandas as pd

    series = pd.Series(values)
    if series.empty:
        return []
    kind = series.dtype.kind
    if kind in "iuf":
        present = series.dropna()
        extremes = [present.min(), present.max()] if len(present) else []
        texts = [f"{v:,.2f}" if kind == "f" else f"{v:,}" for v in extremes]
        return texts + (["–"] if len(present) < len(series) else [])
    texts = series.astype(object).fillna("–").map(str).tolist()  # missing cells show as html.py's na_rep
    # heapq, not Series.nlargest: ~4 ms of pandas per column, paid by every table of every report
    return heapq.nlargest(_SAMPLES, dict.fromkeys(texts), key=len) if len(texts) > _SAMPLES else texts
