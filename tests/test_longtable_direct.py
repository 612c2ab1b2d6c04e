"""Long-table pages drawn directly (fpdf2 over WeasyPrint frames) look like WeasyPrint's own.

One table of 110 to 150 rows rendered both ways: the page images (pdftoppm) must be the same to a small
pixel difference, pdftotext must find every row, the header on every page and "Page i of N",
and the tagged PDF's structure tree must hold every drawn row as WeasyPrint would have. What
cannot be drawn the same way keeps WeasyPrint's layout and says why in one log line.
"""

from __future__ import annotations

import logging
import re
import subprocess

import pikepdf
import pytest
from PIL import Image, ImageChops

from tests.test_longtable import _check_table, _frame, _html, _pages, _table
from tests.test_tagged_pdf import Structure
from toolkit.render import longtable, longtable_direct
from toolkit.render.longtable_stamp import MARK
from toolkit.render.pdf import write_pdf

MEAN_LEVELS = 1.0  # mean grey-level difference a page may show (of 255): the rows' lines anti-alias a little differently
NOT_DRAWN = "not drawn directly"
ROWS = 100  # some under the title, a whole page drawn, the tail


def _images(pdf, prefix) -> list[Image.Image]:
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(prefix)], check=True)
    return [Image.open(path).convert("L") for path in sorted(prefix.parent.glob(prefix.name + "-*.png"))]


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    histogram = ImageChops.difference(a, b).histogram()
    return sum(level * count for level, count in enumerate(histogram)) / (a.width * a.height)


def _write(project, tmp_path, html, name, caplog, **kwargs):
    path = tmp_path / f"{name}.pdf"
    with caplog.at_level(logging.INFO, logger="toolkit.render.longtable"):
        caplog.clear()
        write_pdf(html, path, base_dir=tmp_path, templates_dir=project.templates_dir, workers=2, **kwargs)
    return path, caplog.text


@pytest.mark.parametrize("new_page", [False, True], ids=["under-the-title", "on-a-new-page"])
def test_drawn_pages_look_like_weasyprints_and_are_tagged_like_them(project, tmp_path, monkeypatch, caplog, new_page):
    # Rows under the title (or the table's first page), a part's first page, a page inside a part, the tail
    rows = 150 if not new_page else 110
    html = _html(project, {"events": _table("events", _frame(rows), "Events")}, long_table_rows=10)
    if new_page:  # no rows share the title's page: the table's own first page is drawn
        html = html.replace("</head>", "<style>[data-nbpress-long-table] { break-before: page }</style></head>", 1)
    monkeypatch.setattr(longtable, "CHUNK_PAGES", 2)
    monkeypatch.setattr(longtable_direct, "FRAME_PAGES", 2)
    monkeypatch.setattr(longtable_direct, "DIRECT_ROWS", 10**9)
    laid_out, said = _write(project, tmp_path, html, "weasyprint", caplog)
    assert NOT_DRAWN in said
    monkeypatch.setattr(longtable_direct, "DIRECT_ROWS", 10)
    drawn, said = _write(project, tmp_path, html, "drawn", caplog)
    assert NOT_DRAWN not in said

    ours, theirs = _images(drawn, tmp_path / "drawn"), _images(laid_out, tmp_path / "weasyprint")
    assert len(ours) == len(theirs) >= 5  # the first flow, 3 drawn pages, the table's tail
    assert ("Events" in _pages(drawn)[0]) is not new_page
    for page, (a, b) in enumerate(zip(ours, theirs), 1):
        assert a.size == b.size and _mean_difference(a, b) < MEAN_LEVELS, f"page {page} differs"
    _check_table(_pages(drawn), rows)

    with pikepdf.open(drawn) as pdf:  # the rows' elements came as an incremental update, their note went
        assert pdf.check_pdf_syntax() == [] and MARK not in pdf.Root
    tree, reference = Structure(drawn), Structure(laid_out)
    tree.check_every_page_reached()  # the drawn cells' MCIDs are in the tree and the parent tree
    body_rows = [tr for tr in tree.tags("/TR") if any(k.get_object()["/S"] == "/TD" for k in tr["/K"])]
    assert len(body_rows) == rows and len(tree.tags("/TD")) == len(reference.tags("/TD")) == rows * 5
    assert len(tree.tags("/TH")) == len(reference.tags("/TH"))
    ids = [str(th["/ID"]) for th in tree.tags("/TH")]
    assert len(ids) == len(set(ids)) and all(str(h) in set(ids) for td in tree.tags("/TD") for h in td["/A"]["/Headers"])
    assert all(len(td["/A"]["/Headers"]) == 2 for td in tree.tags("/TD"))  # its row's and its column's header


def test_untagged_drawn_pages_and_a_cell_with_markup_falling_back(project, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(longtable_direct, "DIRECT_ROWS", 10)
    html = _html(project, {"events": _table("events", _frame(ROWS), "Events")}, long_table_rows=10)
    drawn, said = _write(project, tmp_path, html, "untagged", caplog, tagged=False)
    assert NOT_DRAWN not in said
    with pikepdf.open(drawn) as pdf:
        assert "/StructTreeRoot" not in pdf.Root
    _check_table(_pages(drawn), ROWS)

    marked_up = re.sub(r"<td([^>]*)>(user-[^<]*)</td>", r"<td\1><b>\2</b></td>", html, count=1)
    laid_out, said = _write(project, tmp_path, marked_up, "fallback", caplog, tagged=False)
    assert f"{NOT_DRAWN}: a cell holds markup" in said and said.count(NOT_DRAWN) == 1
    _check_table(_pages(laid_out), ROWS)
