"""Long tables drawn directly: which tables, their frame pages, and the rows stamped on them.

A long table's whole pages hold rows of one height, so they need no layout: WeasyPrint lays out
one *frame* per page (running header and footer, "Page i of N", the caption, the header row,
and one empty placeholder row exactly as tall as the page's rows), :mod:`.longtable_draw` draws
the rows into a second PDF, and :mod:`.longtable_stamp` puts each drawn page on its frame (and
its rows in the frame's structure tree when the PDF is tagged). The table's last rows (the
tail) stay in the flow that follows, laid out by WeasyPrint as before.

:func:`why_not` says why a table keeps WeasyPrint's layout (logged in one line): too few rows
to be worth it, or anything :mod:`.longtable_geometry` or :func:`~.longtable_draw.drawable` cannot draw the same way.
PDF/A and PDF/UA variants keep WeasyPrint's layout too: their extra requirements are not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .longtable_draw import drawable
from .longtable_geometry import PX, PageGeometry, page_geometry
from .longtable_layout import LayoutEnv, _layout
from .longtable_split import MarkedTable, _colgroup

__all__ = ["DIRECT_ROWS", "FRAME_PAGES", "geometry_of", "why_not", "frame_fragment", "slots_height"]

DIRECT_ROWS = 1000  # fewer rows than this: WeasyPrint's chunks are quick enough, and the same by construction
FRAME_PAGES = 32  # frame pages a part: laying them out is cheap, each part's document set-up is not


def geometry_of(html: str, env: LayoutEnv) -> list[PageGeometry | str]:
    """The row slots of a probe's first two pages (see :func:`.longtable_geometry.page_geometry`).

    A part's first page and the pages after it differ by a hair: after a page break inside the
    table, the first row is 0.15 pt taller (it gets half of the line above it), so both are measured.
    """
    document, _ = _layout(html, env)
    return [page_geometry(page) for page in document.pages[:2]]


def why_not(table: MarkedTable, options: dict, geometries: Sequence[PageGeometry | str]) -> str | None:
    minimum = DIRECT_ROWS
    if len(table.rows) < minimum:
        return f"{len(table.rows)} rows (direct drawing starts at {minimum})"
    if options.get("pdf_variant"):
        return f"the PDF is {options['pdf_variant']}, whose checks the drawn pages are not made for"
    for geometry in geometries:
        if isinstance(geometry, str):
            return geometry
    return drawable(table.rows, geometries) if geometries else None


def frame_fragment(table: MarkedTable, heights: Sequence[float], widths: Sequence[float], *, first: bool, running: str) -> str:
    """The table with one empty placeholder row per page, each ``heights[i]`` points tall
    (a hair less, so rounding never pushes it to the next page)."""
    cell = '<td style="border:0;background:none;padding:0"></td>' * table.columns
    rows = "".join(f'<tr style="height:{h / PX - 0.01:.4f}px">{cell}</tr>' for h in heights)
    out = [table.container(continued=not first), running, table.caption if first else "", table.table, _colgroup(widths),
           table.thead, "<tbody>", rows, "</tbody>", f"</table></{table.tag}>"]
    return "".join(out)


def slots_height(geometry: PageGeometry, rows: int) -> float:
    top = geometry.slots[0][0]
    last_top, last_height, _ = geometry.slots[rows - 1]
    return last_top + last_height - top
