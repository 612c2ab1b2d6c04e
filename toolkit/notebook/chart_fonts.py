"""Charts in every script: the fallback fonts matplotlib draws with, and what it could not draw.

matplotlib (>= 3.6) draws each character with the first font of a text's family list that has
it, but a generic family ("sans-serif") names a single font, DejaVu Sans, which has no Chinese,
Japanese or Korean. So when a figure is recorded every text gets the Noto families appended to
its own (the analyst's choice stays first); the PDF's CSS (templates/static/report.css) names the
same chain. Families that are not installed are left out: matplotlib would warn about each.

A character no font in the chain has is drawn as a box, and matplotlib warns "Glyph N (...)
missing from font(s) ..."; :func:`recording` collects those code points so the run can name
them (see :mod:`toolkit.render.glyphs`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

__all__ = ["FALLBACK_FAMILIES", "recording", "needs_shaping"]

# The same families, in the same order, as the fallback chain in templates/static/report.css.
FALLBACK_FAMILIES = ("Noto Sans", "Noto Sans CJK JP", "Noto Sans Arabic", "Noto Sans Hebrew")

_GLYPH_WARNING = re.compile(r"Glyph (\d+) \(.*\) missing from font")


@cache
def _installed_fallbacks() -> tuple[str, ...]:
    from matplotlib import font_manager

    known = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(family for family in FALLBACK_FAMILIES if family in known)


def _texts(fig: Any) -> list[Any]:
    from matplotlib.text import Text

    return fig.findobj(Text)


# Right-to-left letters and combining marks, in an SVG's text: WeasyPrint draws SVG text one
# character at a time (no bidi reordering, no joined letters), so such a chart is recorded with
# its text as paths that matplotlib shaped (libraqm).
_NEEDS_SHAPING = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\U00010800-\U00010fff\U0001e800-\U0001efff]")


def needs_shaping(svg: str) -> bool:
    """Whether an SVG recorded with its text as text has text WeasyPrint would draw wrongly."""
    return _NEEDS_SHAPING.search(svg) is not None  # text is the only non-ASCII an SVG of matplotlib's has


@contextmanager
def recording(fig: Any) -> Iterator[list[int]]:
    """While a figure is saved: the fallback families on, and the code points matplotlib could
    not draw collected (sorted, once each) in the list yielded. Its other warnings pass through."""
    import matplotlib

    fallbacks = _installed_fallbacks()
    for text in _texts(fig):
        families = list(text.get_fontfamily())
        text.set_fontfamily(families + [f for f in fallbacks if f not in families])
    missing: list[int] = []
    # Texts made while drawing (new tick labels) start from rcParams: the chain there too.
    chain = list(matplotlib.rcParams["font.family"]) + list(fallbacks)
    with matplotlib.rc_context({"font.family": chain}), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield missing
    found = {int(m.group(1)) for w in caught if (m := _GLYPH_WARNING.search(str(w.message)))}
    missing.extend(sorted(found))
    passed_on = set()
    for warning in caught:  # passed on once each, so the notebook still shows them
        if str(warning.message) not in passed_on:
            passed_on.add(str(warning.message))
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
