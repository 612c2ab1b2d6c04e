"""The page's content box from the spec's ``page`` settings (CSS ``size`` and ``margin``), in points.

Wide tables are laid out by comparing their estimated widths with this box
(:mod:`.wide_tables`), without a trial layout. Only the CSS the spec allows is read: page-size
keywords with an optional ``portrait``/``landscape``, or one or two lengths; margins as one to
four lengths (``auto`` counts as 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RenderError
from ..inputs.spec import PageSettings

__all__ = ["PageBox", "page_box"]

_PT_PER = {"pt": 1.0, "in": 72.0, "cm": 72 / 2.54, "mm": 72 / 25.4, "q": 72 / 101.6, "pc": 12.0, "px": 0.75}
# CSS Paged Media page-size keywords (portrait width x height, in mm).
_SIZES_MM = {
    "a5": (148, 210), "a4": (210, 297), "a3": (297, 420), "b5": (176, 250), "b4": (250, 353),
    "jis-b5": (182, 257), "jis-b4": (257, 364), "letter": (215.9, 279.4), "legal": (215.9, 355.6),
    "ledger": (279.4, 431.8),
}
_LENGTH = re.compile(r"^(-?\d+(?:\.\d+)?|-?\.\d+)(pt|in|cm|mm|q|pc|px|%)?$", re.I)


@dataclass(frozen=True)
class PageBox:
    """A page and its margins, in points."""

    width: float
    height: float
    top: float
    right: float
    bottom: float
    left: float

    @property
    def content_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def is_landscape(self) -> bool:
        return self.width > self.height

    def landscape(self) -> PageBox:
        """The same page turned (the margins stay on the same sides, as CSS applies them)."""
        long, short = max(self.width, self.height), min(self.width, self.height)
        return PageBox(long, short, self.top, self.right, self.bottom, self.left)

    def css_size(self) -> str:
        return f"{self.width:.2f}pt {self.height:.2f}pt"


def _length(text: str, percent_of: float) -> float:
    if text.lower() == "auto" or text == "0":
        return 0.0
    match = _LENGTH.match(text)
    if not match:
        raise RenderError(f"page setting: cannot read the length {text!r}")
    number, unit = float(match[1]), (match[2] or "px").lower()
    return number * percent_of / 100 if unit == "%" else number * _PT_PER[unit]


def _size(size: str) -> tuple[float, float]:
    words = size.lower().split()
    orientation = next((w for w in words if w in ("portrait", "landscape")), None)
    rest = [w for w in words if w not in ("portrait", "landscape")]
    if len(rest) == 1 and rest[0] in _SIZES_MM:
        width, height = (v * _PT_PER["mm"] for v in _SIZES_MM[rest[0]])
    elif not rest:
        width, height = (v * _PT_PER["mm"] for v in _SIZES_MM["a4"])  # `size: landscape` alone
    elif len(rest) in (1, 2) and all(_LENGTH.match(w) for w in rest):
        width = _length(rest[0], 0)
        height = _length(rest[-1], 0)
    else:
        raise RenderError(f"page setting: cannot read the page size {size!r}")
    if orientation == "landscape" and width < height or orientation == "portrait" and width > height:
        width, height = height, width
    return width, height


def page_box(page: PageSettings) -> PageBox:
    width, height = _size(page.size)
    values = [_length(v, width) for v in page.margin.split()]
    if not 1 <= len(values) <= 4:
        raise RenderError(f"page setting: cannot read the margins {page.margin!r}")
    top, right, bottom, left = (values * 4)[:4] if len(values) == 1 else {
        2: lambda v: (v[0], v[1], v[0], v[1]),
        3: lambda v: (v[0], v[1], v[2], v[1]),
        4: lambda v: tuple(v),
    }[len(values)](values)
    return PageBox(width, height, top, right, bottom, left)
