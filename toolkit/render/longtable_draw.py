"""Long tables drawn directly, the drawing side: rows into the slots WeasyPrint measured.

fpdf2 draws each page's rows (striped backgrounds, the lines under rows, the cells' text) in the
very font files, sizes and colours WeasyPrint used (:mod:`.longtable_geometry`); HarfBuzz
(uharfbuzz, the shaper Pango uses) gives the glyph advances with the same OpenType features,
so kerned text is drawn in pieces at the kerned positions. :func:`drawable` checks a table
first: every row's and cell's start tag the same as the first row's (the probe page's styles
hold for all), every cell plain text, one glyph per character in the column's font, no ligatures or
offsets, narrower than its column, and the probe page's widths reproduced to 0.01 pt.
"""

from __future__ import annotations

import html as html_lib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .longtable_geometry import PageGeometry

__all__ = ["cells", "drawable", "draw_pages"]

_CELL = re.compile(r"<(t[hd])\b[^>]*>(.*?)</t[hd]\s*>", re.I | re.S)
_START_TAG = re.compile(r"<(?:tr|t[hd])\b[^>]*>", re.I)
_TOLERANCE = 0.01  # pt
_CACHED_TEXTS = 4096  # shaped texts kept per font: a column's repeated words and dates, not every number
TAG_PLACEHOLDER = "Span"  # the marked content's tag; the structure element (TH or TD) is the cell's


def cells(row_html: str) -> list[str] | None:
    """A row's cell texts; None when a cell holds markup (only plain text is drawn directly)."""
    texts = []
    for _, content in _CELL.findall(row_html):
        content = content.strip()
        if "<" in content:
            return None
        texts.append(html_lib.unescape(content) if "&" in content else content)
    return texts


class _Shaper:
    """Glyph advances of texts in one font and size, as HarfBuzz shapes them (cached per text)."""

    def __init__(self, data: bytes, size: float, features: dict[str, bool]):
        import uharfbuzz as hb

        self.hb = hb
        face = hb.Face(data)
        self.font, self.scale, self.features = hb.Font(face), size / face.upem, features
        self.nominal = {code: self.font.get_nominal_glyph(code) for code in range(32, 127)}
        self.cache: dict[str, list[float] | None] = {}

    def advances(self, text: str) -> list[float] | None:
        """Each character's advance in points; None if the text is not one plain glyph a character."""
        if text in self.cache:
            return self.cache[text]
        buffer = self.hb.Buffer()
        buffer.add_str(text)
        buffer.guess_segment_properties()
        self.hb.shape(self.font, buffer, self.features)
        infos, positions = buffer.glyph_infos, buffer.glyph_positions
        result = None
        if len(infos) == len(text) and all(
            info.codepoint == (self.nominal.get(ord(ch)) if ord(ch) in self.nominal else self.font.get_nominal_glyph(ord(ch)))
            and info.codepoint and not pos.x_offset and not pos.y_offset
            for ch, info, pos in zip(text, infos, positions)
        ):
            result = [pos.x_advance * self.scale for pos in positions]
        if len(self.cache) < _CACHED_TEXTS:
            self.cache[text] = result
        return result


def _shapers(geometry: PageGeometry) -> list[_Shaper]:
    made: dict = {}
    out = []
    for column in geometry.columns:
        key = (column.font, column.size, column.features)
        if key not in made:
            made[key] = _Shaper(geometry.fonts[column.font], column.size, dict(column.features))
        out.append(made[key])
    return out


def drawable(rows: Sequence[str], geometries: Sequence[PageGeometry]) -> str | None:
    """Why these rows cannot be drawn directly into these pages (None: they can)."""
    first = geometries[0]
    pattern = _START_TAG.findall(rows[0])
    if any(_START_TAG.findall(row) != pattern for row in rows):
        return "its rows or cells have other attributes from row to row (classes, styles)"
    for row in rows:  # the cheap checks first, over every row; the texts are parsed again below, not kept
        texts = cells(row)
        if texts is None:
            return "a cell holds markup"
        if len(texts) != len(first.columns):
            return "a row has another number of cells"
    for geometry in geometries[1:]:
        if [(c.align, c.edge, c.font, c.size, c.color) for c in geometry.columns] != [
                (c.align, c.edge, c.font, c.size, c.color) for c in first.columns]:
            return "its columns differ between its first and later pages"
    shapers = _shapers(first)
    for geometry in geometries:
        for text, column, width in geometry.samples:
            advances = shapers[column].advances(text)
            if advances is None or abs(sum(advances) - width) > _TOLERANCE:
                return f"the text {text!r} is shaped differently than WeasyPrint did"
    for row in rows:
        for text, column, shaper in zip(cells(row), first.columns, shapers):
            advances = shaper.advances(text)
            if advances is None:
                return f"the text {text!r} needs shaping (ligatures, marks or another font)"
            if sum(advances) > column.width + _TOLERANCE:
                return f"the text {text!r} is wider than its column"
    return None


def draw_pages(rows: Sequence[str], pages: Sequence[tuple[int, int, PageGeometry]], path: str, tagged: bool = False,
               first_row: int = 0) -> int:
    """Draw ``pages`` ((first row in ``rows``, rows, geometry) each) into a PDF at ``path``: one
    page each, only the rows (the frame around them comes from WeasyPrint). ``first_row``:
    ``rows[0]``'s index in the table, which stripes a row. Returns the pages written.

    ``tagged``: backgrounds and lines are marked as artifacts and each non-empty cell's text
    as marked content with an MCID counted from 0 on each page, in reading order
    (:mod:`.longtable_stamp` renumbers them and builds the structure elements)."""
    from fpdf import FPDF

    first = pages[0][2]
    pdf = FPDF(unit="pt", format=first.size)
    pdf.set_margins(0, 0, 0)
    pdf.set_auto_page_break(False)
    shapers = _shapers(first)
    with tempfile.TemporaryDirectory(prefix="nbpress-fonts-") as fonts_dir:
        families = {}
        for key, data in first.fonts.items():
            (Path(fonts_dir) / f"{key}.ttf").write_bytes(data)
            pdf.add_font(f"f{key}", "", str(Path(fonts_dir) / f"{key}.ttf"))
            families[key] = f"f{key}"
        for start, count, geometry in pages:
            pdf.add_page(format=geometry.size)
            _draw_rows(pdf, [cells(rows[i]) for i in range(start, start + count)], first_row + start, geometry, shapers, families, tagged)
        pdf.output(path)
    return len(pages)


def _draw_rows(pdf, texts: list[list[str]], start: int, geometry: PageGeometry, shapers, families, tagged: bool) -> None:
    slots = geometry.slots
    if tagged:
        pdf._out("/Artifact BMC")  # fpdf2 has no marked-content call for this: the operators are written as they are
    for k in range(len(texts)):
        top, height, _ = slots[k]
        for x, width, rgb in geometry.backgrounds[(start + k) % 2]:
            pdf.set_fill_color(*(round(c * 255, 4) for c in rgb))
            pdf.rect(x, top, width, height, style="F")
    for k in range(len(texts)):
        top, height, _ = slots[k]
        for x1, x2, line, rgb in geometry.borders:
            pdf.set_draw_color(*(round(c * 255, 4) for c in rgb))
            pdf.set_line_width(line)
            pdf.line(x1, top + height, x2, top + height)
    if tagged:
        pdf._out("EMC")
    font, mcid = None, 0
    for k, row in enumerate(texts):
        baseline = slots[k][2]
        for text, column, shaper in zip(row, geometry.columns, shapers):
            if not text:
                continue
            if font != (column.font, column.size, column.color):
                font = (column.font, column.size, column.color)
                pdf.set_font(families[column.font], size=column.size)
                pdf.set_text_color(*(round(c * 255, 4) for c in column.color))
            advances = shaper.advances(text)
            x = column.edge - sum(advances) if column.align == "right" else column.edge
            if tagged:
                pdf._out(f"/{TAG_PLACEHOLDER} <</MCID {mcid}>> BDC")
                mcid += 1
            _draw_text(pdf, text, advances, x, baseline, shaper)
            if tagged:
                pdf._out("EMC")


def _draw_text(pdf, text: str, advances: list[float], x: float, baseline: float, shaper: _Shaper) -> None:
    """The text in pieces that break where a kerning pair moves the next glyph."""
    piece_start, piece_x, cursor = 0, x, x
    for i, advance in enumerate(advances):
        cursor += advance
        nominal = shaper.font.get_glyph_h_advance(shaper.font.get_nominal_glyph(ord(text[i]))) * shaper.scale
        if abs(nominal - advance) > 1e-6 and i + 1 < len(text):
            pdf.text(piece_x, baseline, text[piece_start : i + 1])
            piece_start, piece_x = i + 1, cursor
    pdf.text(piece_x, baseline, text[piece_start:])
