"""Long-table pages drawn directly (fpdf2 over WeasyPrint frames) look like WeasyPrint's own.

One 50-row table, rendered untagged both ways in one test: the page images (pdftoppm) must be
the same to a small pixel difference, and pdftotext must find every row, the header on every
page and "Page i of N". Tagged output keeps WeasyPrint's layout and says so in one log line.
"""

from __future__ import annotations

import logging
import subprocess

from PIL import Image, ImageChops

from tests.test_longtable import _check_table, _frame, _html, _pages, _table
from toolkit.render import longtable_direct
from toolkit.render.pdf import write_pdf

MEAN_LEVELS = 1.0  # mean grey-level difference a page may show (of 255): anti-aliasing of lines


def _images(pdf, prefix) -> list[Image.Image]:
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(prefix)], check=True)
    return [Image.open(path).convert("L") for path in sorted(prefix.parent.glob(prefix.name + "-*.png"))]


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    histogram = ImageChops.difference(a, b).histogram()
    return sum(level * count for level, count in enumerate(histogram)) / (a.width * a.height)


def test_drawn_pages_look_like_weasyprints_and_keep_every_row(project, tmp_path, monkeypatch, caplog):
    html = _html(project, {"events": _table("events", _frame(50), "Events")}, long_table_rows=10)
    paths = {}
    for way, minimum in (("weasyprint", 10**9), ("drawn", 10)):
        monkeypatch.setattr(longtable_direct, "DIRECT_ROWS", minimum)
        paths[way] = tmp_path / f"{way}.pdf"
        with caplog.at_level(logging.INFO, logger="toolkit.render.longtable"):
            caplog.clear()
            write_pdf(html, paths[way], base_dir=tmp_path, templates_dir=project.templates_dir, tagged=False, workers=2)
        drawn_log = "not drawn directly" not in caplog.text
        assert drawn_log == (way == "drawn"), caplog.text
    ours, theirs = _images(paths["drawn"], tmp_path / "drawn"), _images(paths["weasyprint"], tmp_path / "weasyprint")
    assert len(ours) == len(theirs) >= 2
    for page, (a, b) in enumerate(zip(ours, theirs), 1):
        assert a.size == b.size
        assert _mean_difference(a, b) < MEAN_LEVELS, f"page {page} differs"
    _check_table(_pages(paths["drawn"]), 50)


def test_tagged_output_keeps_weasyprints_layout_and_says_why(project, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(longtable_direct, "DIRECT_ROWS", 10)
    html = _html(project, {"events": _table("events", _frame(50), "Events")}, long_table_rows=10)
    with caplog.at_level(logging.INFO, logger="toolkit.render.longtable"):
        write_pdf(html, tmp_path / "r.pdf", base_dir=tmp_path, templates_dir=project.templates_dir, workers=1)
    assert "not drawn directly: the PDF is tagged" in caplog.text
    _check_table(_pages(tmp_path / "r.pdf"), 50)
