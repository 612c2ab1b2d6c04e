"""A long table after other content starts under it, as WeasyPrint in one piece puts it.

The content before a long table is laid out as a part of its own; the table's first rows that
share that part's last page go with it (a probe says how many), so the joined PDF has the same
pages as the report laid out in one piece, drawn or laid out in chunks.
"""

from __future__ import annotations

import pytest

from tests.test_longtable import _check_table, _frame, _html, _pages, _table
from toolkit.notebook import records as rec
from toolkit.render import longtable, longtable_direct
from toolkit.render.pdf import write_pdf

ROWS = 200


@pytest.mark.parametrize("direct_rows", [10, 10**9], ids=["drawn", "chunks"])
def test_a_long_table_after_a_title_has_the_pages_of_one_piece(project, tmp_path, monkeypatch, direct_rows):
    records = {"intro": rec.Text("intro", "Text **before** the long table."), "events": _table("events", _frame(ROWS), "Events")}
    one_piece = write_pdf(_html(project, records, long_table_rows=10**6), tmp_path / "one.pdf",
                          base_dir=tmp_path, templates_dir=project.templates_dir)
    monkeypatch.setattr(longtable, "CHUNK_PAGES", 2)
    monkeypatch.setattr(longtable_direct, "FRAME_PAGES", 2)
    monkeypatch.setattr(longtable_direct, "DIRECT_ROWS", direct_rows)
    html = _html(project, records, long_table_rows=10)
    assert html.count(longtable.BEGIN) == 1
    parts = write_pdf(html, tmp_path / "parts.pdf", base_dir=tmp_path, templates_dir=project.templates_dir, workers=2)

    pages = _pages(tmp_path / "parts.pdf")
    assert parts.pages == len(pages) == one_piece.pages
    assert "Text before the long table." in pages[0] and "Events" in pages[0]  # the table starts under the text
    _check_table(pages, ROWS)
    assert pages == _pages(tmp_path / "one.pdf")  # every row on the same page as in one piece
