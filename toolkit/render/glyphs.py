"""Characters no font can draw: found before the PDF is laid out, never silent.

Pango (under WeasyPrint) draws a character with the first font of the CSS chain that has it and
otherwise with any installed font that has it (fontconfig's fallback); with none, it draws an
empty box. So a character is drawable when the template's own fonts (``static/fonts``) or an
installed font cover it. fontconfig tells both (``fc-list``, ``fc-query``: the tools of the
library Pango uses), once per process (~0.1 s); a check then costs a lookup per distinct
non-ASCII character of each record.

The text checked is what the PDF shows from the run: title and description, shown parameters,
table captions, headers, index and text cells, metric values and labels, text records and figure
captions. Chart labels are drawn by matplotlib in the kernel, which names the code points it
could not draw (:mod:`toolkit.notebook.chart_fonts`).
"""

from __future__ import annotations

import bisect
import logging
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..notebook import records as rec
from .shown import shown_parameters
from .template_folders import find_static, static_folders

__all__ = ["MissingGlyph", "find_missing", "shown_texts", "describe"]

log = logging.getLogger(__name__)

# Not drawn as glyphs: controls, format characters (bidi marks, joiners), line/paragraph separators,
# surrogates, variation selectors.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
_FONT_SUFFIXES = {".ttf", ".otf", ".ttc", ".woff", ".woff2"}


@dataclass
class MissingGlyph:
    char: str
    codepoint: str  # "U+E000"
    name: str  # Unicode name, or "" (private use, unassigned)
    where: list[str] = field(default_factory=list)  # e.g. "table cities", "figure trend"


def describe(missing: MissingGlyph) -> str:
    named = f" {missing.name}" if missing.name else ""
    return f"{missing.codepoint}{named} {missing.char!r} in {', '.join(missing.where)}"


def _invisible(char: str) -> bool:
    return (
        unicodedata.category(char) in _INVISIBLE_CATEGORIES
        or "\ufe00" <= char <= "\ufe0f"
        or "\U000e0100" <= char <= "\U000e01ef"
    )


def _fontconfig(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def _ranges(charsets: str) -> Iterator[tuple[int, int]]:
    """fontconfig's charset notation ("20-7e a0 ...", one font a line) as (first, last) pairs."""
    # The faces of a family share a charset (the CJK ones ~40 times): each distinct line once.
    for item in " ".join(set(charsets.splitlines())).split():
        first, _, last = item.partition("-")
        yield int(first, 16), int(last or first, 16)


@dataclass(frozen=True)
class Coverage:
    """Code points some font has, as sorted disjoint ranges (a set would take ~0.4 s to build)."""

    firsts: tuple[int, ...]
    lasts: tuple[int, ...]

    @classmethod
    def of(cls, ranges: Iterator[tuple[int, int]]) -> Coverage:
        merged: list[list[int]] = []
        for first, last in sorted(ranges):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        return cls(tuple(m[0] for m in merged), tuple(m[1] for m in merged))

    def __contains__(self, codepoint: int) -> bool:
        i = bisect.bisect_right(self.firsts, codepoint) - 1
        return i >= 0 and codepoint <= self.lasts[i]


@cache
def coverage(templates_dir: Path) -> Coverage:
    """What the installed fonts (Pango's fallback) and the template's own fonts can draw. Cached
    per process: a change of installed fonts is seen by the next process."""
    names = {p.name for static in static_folders(templates_dir) if (static / "fonts").is_dir()
             for p in (static / "fonts").glob("*") if p.suffix.lower() in _FONT_SUFFIXES}
    own = sorted(str(find_static(templates_dir, f"fonts/{name}")) for name in names)  # a project's font replaces its namesake
    charsets = []
    try:
        charsets.append(_fontconfig("fc-list", "--format", "%{charset}\n"))
        if own:
            charsets.append(_fontconfig("fc-query", "--format", "%{charset}\n", *own))
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot read the fonts' coverage with fontconfig (%s): only ASCII counts as drawable", exc)
    return Coverage.of(r for text in charsets for r in _ranges(text))


def _frame_text(frame: Any) -> str:
    """Headers, index and the distinct values of text columns: numbers and dates are digits."""
    parts = [str(c) for c in frame.columns] + [str(n) for n in frame.index.names if n is not None]
    if frame.index.dtype.kind == "O" or str(frame.index.dtype) in ("string", "category"):
        parts += map(str, frame.index.unique())
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind == "O" or str(values.dtype) in ("string", "category"):
            parts += map(str, values.dropna().unique())
    return "\n".join(parts)


def shown_texts(spec: Any, parameters: dict[str, Any], records: dict[str, rec.Record]) -> Iterator[tuple[str, str]]:
    """(where, text) for each piece of run text the PDF shows."""
    yield "title", spec.title
    yield "description", spec.description
    for label, value in shown_parameters(spec, parameters).items():
        yield f"parameter {label}", f"{label} {value}"
    for record in records.values():
        where = f"{record.kind} {record.name}"
        if isinstance(record, rec.Table):
            options = spec.tables.get(record.name)
            frame = record.frame
            if options and options.max_rows:
                frame = frame.head(options.max_rows)
            yield where, f"{record.caption or ''}\n{_frame_text(frame)}"
        elif isinstance(record, rec.Metric):
            yield where, f"{record.label or record.name} {record.value}"
        elif isinstance(record, rec.Text):
            yield where, record.markdown
        elif isinstance(record, rec.Figure):
            yield where, record.caption or ""


def _charted(records: dict[str, rec.Record]) -> Iterator[tuple[str, str]]:
    """(where, char) for each character matplotlib could not draw in a chart."""
    for record in records.values():
        if isinstance(record, rec.Figure):
            for codepoint in record.missing_glyphs:
                yield f"figure {record.name}", chr(codepoint)


def find_missing(spec: Any, parameters: dict[str, Any], records: dict[str, rec.Record], templates_dir: Path) -> list[MissingGlyph]:
    """The characters the PDF would show as boxes, in code point order, each with where it is."""
    found: dict[str, MissingGlyph] = {}

    def note(where: str, char: str) -> None:
        entry = found.get(char)
        if entry is None:
            entry = found[char] = MissingGlyph(char, f"U+{ord(char):04X}", unicodedata.name(char, ""))
        if where not in entry.where:
            entry.where.append(where)

    covered = None
    for where, text in shown_texts(spec, parameters, records):
        for char in set(text):
            if char.isascii() and char.isprintable():
                continue  # every chain starts with a font that has ASCII: most text stops here
            if covered is None:
                covered = coverage(templates_dir.resolve())
            if ord(char) not in covered and not _invisible(char):
                note(where, char)
    for where, char in _charted(records):
        note(where, char)
    return sorted(found.values(), key=lambda m: ord(m.char))
