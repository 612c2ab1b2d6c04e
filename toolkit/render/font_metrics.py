"""Text widths in ems from the report's own fonts (their advance widths, read with fontTools).

Summing advance widths leaves out kerning and shaping, a few percent at most for the short
strings of a table's cells; :mod:`.wide_tables` adds a margin for that. A font file that is
missing (a project with its own templates) falls back to a generous average width.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["FontMetrics", "AsciiBound", "metrics"]

_FALLBACK_EM = 0.65  # wider than DejaVu Sans' digits (0.636 em) and most of its letters


class FontMetrics:
    """Advance widths of one font file, in ems; characters it lacks count :data:`_FALLBACK_EM`."""

    def __init__(self, path: Path | None):
        self._widths: dict[int, float] = {}
        if path is not None and path.is_file():
            from fontTools.ttLib import TTFont  # a WeasyPrint dependency; loaded only for wide tables

            font = TTFont(str(path), lazy=True)
            units = font["head"].unitsPerEm
            advances = font["hmtx"].metrics
            self._widths = {code: advances[glyph][0] / units for code, glyph in font.getBestCmap().items()}
            font.close()

    def width(self, text: str) -> float:
        widths = self._widths
        return sum(widths.get(ord(ch), _FALLBACK_EM) for ch in text)


class AsciiBound:
    """An upper bound of any ASCII text's width in DejaVu Sans (Bold 'W': 1.103 em), without
    reading a font file: a table that fits by it fits. Other text has no bound (infinite)."""

    EM = 1.11

    def width(self, text: str) -> float:
        return len(text) * self.EM if text.isascii() else float("inf")


@functools.cache
def metrics(path: Path | None) -> FontMetrics:
    """One font's metrics, read once per process."""
    return FontMetrics(path)
