"""Long tables drawn directly, the measuring side: one laid-out page of rows -> its geometry.

WeasyPrint lays out a probe page full of a long table's rows anyway (to count a page's rows,
see :mod:`.longtable`). Every row of a long table has one height, so that page says where every
row slot of any such page is: :func:`page_geometry` reads it from WeasyPrint's boxes (row tops,
each column's text edge and alignment, baseline, font file, size and colour, the striped
backgrounds and the collapsed borders between rows). :mod:`.longtable_draw` then draws any
rows into those slots. Anything it could not draw the same way makes the geometry ``None``
with the reason, and the table keeps WeasyPrint's layout.

Lengths are in PDF points from the page's top left (WeasyPrint's CSS pixels x 0.75).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .longtable_split import ROW_ID

__all__ = ["Column", "PageGeometry", "page_geometry", "PX"]

PX = 0.75  # points per CSS pixel


@dataclass(frozen=True)
class Column:
    align: str  # "left" or "right"
    edge: float  # where the text starts (left) or ends (right)
    width: float  # the cell's content width: wider text is not drawn directly
    font: str  # key of the font file in PageGeometry.fonts
    size: float
    color: tuple[float, float, float]
    features: tuple[tuple[str, bool], ...]  # OpenType features the text was shaped with


@dataclass(frozen=True)
class PageGeometry:
    """Where the rows of one kind of page (a table's first page, or a continued one) go."""

    size: tuple[float, float]
    slots: tuple[tuple[float, float, float], ...]  # each row slot's top, height and text baseline
    columns: tuple[Column, ...]
    backgrounds: tuple[tuple[tuple[float, float, tuple], ...], ...]  # by row-index parity: (x, w, rgb) of the slot's height
    borders: tuple[tuple[float, float, float, tuple], ...]  # on the line under every row: (x1, x2, line width, rgb)
    fonts: dict  # key -> font file bytes (the very file WeasyPrint embedded)
    samples: tuple[tuple[str, int, float], ...]  # (text, column, WeasyPrint's width): checks the shaping


def _rgb(color) -> tuple[float, float, float] | None:
    """An opaque colour as RGB; None for transparent; ValueError for translucent ones."""
    if color is None or color.alpha == 0:
        return None
    if color.alpha != 1:
        raise ValueError("a translucent colour")
    red, green, blue = color.to("srgb").coordinates
    return (float(red), float(green), float(blue))


def _find(box, kind: str):
    if type(box).__name__ == kind:
        return box
    for child in getattr(box, "children", ()):
        found = _find(child, kind)
        if found is not None:
            return found
    return None


def _text_box(cell):
    return _find(cell, "TextBox")


def _font(text_box, fonts: dict) -> str:
    """The font file of the text's (single) glyph run, added to ``fonts`` under its hash."""
    from weasyprint.text.ffi import ffi
    from weasyprint.text.fonts import get_hb_object_data, get_pango_font_hb_face

    layout = text_box.pango_layout
    layout.reactivate(text_box.style)  # WeasyPrint frees a laid-out text's Pango objects until drawing
    try:
        line, _ = layout.get_first_line()
        run = line.runs[0]
        if run == ffi.NULL or run.next != ffi.NULL:
            raise ValueError("text set in more than one font")
        data = get_hb_object_data(get_pango_font_hb_face(run.data.item.analysis.font))
    finally:
        layout.deactivate()
    key = hashlib.sha1(data).hexdigest()[:12]
    fonts[key] = data
    return key


def page_geometry(page) -> PageGeometry | str:
    """The row slots of a WeasyPrint page holding only long-table rows after the header; a
    string says why its rows could not be drawn directly."""
    try:
        return _geometry(page)
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        return str(exc) or type(exc).__name__


def _geometry(page) -> PageGeometry:
    table = _find(page._page_box, "TableBox")
    if table is None:
        raise ValueError("no table on the page")
    body = [group for group in table.children if not group.is_header and not group.is_footer]
    rows = [row for group in body for row in group.children if (row.element.get("id") or "").startswith(ROW_ID)]
    if len(rows) < 2 or len(body) != 1:
        raise ValueError("too few rows to measure")
    for box in (table, *body, *rows):
        if _rgb(box.style["background_color"]) is not None or any(kind != "none" for kind, _ in box.style["background_image"]):
            raise ValueError("a background on the table, its body or a row")
    fonts: dict = {}
    columns, samples = [], []
    for index, cell in enumerate(rows[0].children):
        text = _text_box(cell)
        if text is None or cell.colspan != 1 or cell.rowspan != 1:
            raise ValueError("an empty or spanning cell")
        style = text.style
        plain = style["letter_spacing"] == "normal" and not style["word_spacing"] and style["text_transform"] == "none"
        if style["direction"] != "ltr" or style["text_decoration_line"] not in ("none", None, ()) or not plain:
            raise ValueError("text that is not plain")
        align = {"left": "left", "start": "left", "right": "right", "end": "right"}.get(style["text_align_all"])
        if align is None:
            raise ValueError(f"text aligned {style['text_align_all']}")
        left = cell.content_box_x()
        numeric = style["font_variant_numeric"]
        features = (("kern", style["font_kerning"] != "none"), ("tnum", "tabular-nums" in (numeric if isinstance(numeric, tuple) else ())))
        columns.append(Column(
            align, (left if align == "left" else left + cell.width) * PX, cell.width * PX, _font(text, fonts),
            style["font_size"] * PX, _rgb(style["color"]), features,
        ))
    slots = []  # (top, height, baseline) of each row: the first row after the header is a little shorter
    for row in rows:
        text = None
        for index, cell in enumerate(row.children):
            text = _text_box(cell)
            if text is None:
                raise ValueError("an empty cell")
            samples.append((text.text, index, text.width * PX))
        slots.append((row.position_y * PX, row.height * PX, (text.position_y + text.baseline) * PX))
        if any(abs(c.position_y - row.position_y) > 1e-6 or abs(c.border_height() - row.height) > 1e-3 for c in row.children):
            raise ValueError("cells of different heights in a row")
    backgrounds = [[], []]
    for row in rows[:2]:
        parity = int(row.element.get("id")[len(ROW_ID):]) % 2
        for cell in row.children:
            color = _rgb(cell.style["background_color"])
            if color is not None:
                x, _, w, _ = cell.background.layers[-1].painting_area
                backgrounds[parity].append((x * PX, w * PX, color))
    vertical, horizontal = table.collapsed_border_grid if table.style["border_collapse"] == "collapse" else (None, None)
    if horizontal is None:
        raise ValueError("separate borders")
    header = len(table.children[0].children) if table.children[0].is_header else 0
    skipped = table.skipped_rows - header if table.skipped_rows else 0
    line = header + skipped + 2  # the line under the second body row: the same under every row
    columns_x = list(table.column_positions) + [table.column_positions[-1] + table.column_widths[-1]]
    borders = []
    for x, (_, (style, width, color)) in enumerate(horizontal[line]):
        if width and _rgb(color) is not None:
            if style != "solid":
                raise ValueError(f"{style} borders")
            borders.append((columns_x[x] * PX, columns_x[x + 1] * PX, width * PX, _rgb(color)))
    if any(width and _rgb(color) is not None for row in vertical for _, (_, width, color) in row):
        raise ValueError("vertical borders")
    return PageGeometry(
        (page.width * PX, page.height * PX), tuple(slots),
        tuple(columns), (tuple(backgrounds[0]), tuple(backgrounds[1])), tuple(borders), fonts, tuple(samples),
    )
