"""Nothing is cut off: tables too wide for the page, long text cells, real WeasyPrint PDFs.

Where every word lands is read back with ``pdftotext -bbox``: every word must lie inside the
page's content box (between the side margins), and the pages together must hold every header
and every cell. The rule each table got is checked in the layouts ``run.json`` keeps.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from tests.conftest import make_notebook
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import PageSettings, ReportSpec, find_report
from toolkit.notebook import records as rec
from toolkit.render import longtable
from toolkit.render.html import ReportContext, render_report
from toolkit.render.page_box import page_box
from toolkit.render.pdf import write_pdf
from toolkit.render.wide_tables import fonts_in, plan_layout
from toolkit.runs.pipeline import run_report

MM = 72 / 25.4
A4 = page_box(PageSettings())  # 210 x 297 mm, margins 24 16 20 16 mm
_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)


@dataclass
class Page:
    width: float
    height: float
    words: list[tuple[str, float, float, float, float]]  # text, x0, y0, x1, y1

    @property
    def text(self) -> str:
        return " ".join(w[0] for w in self.words)


def _pages(pdf: Path) -> list[Page]:
    out = subprocess.run(["pdftotext", "-bbox", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return [
        Page(float(w), float(h), [(html.unescape(t), float(a), float(b), float(c), float(d)) for a, b, c, d, t in _WORD.findall(body)])
        for w, h, body in _PAGE.findall(out)
    ]


def _assert_inside(pages: list[Page]) -> None:
    """Every word between the side margins and on the page (margins: the spec's default)."""
    for number, page in enumerate(pages, 1):
        left, right = A4.left - 0.5, page.width - A4.right + 0.5
        outside = [w for w in page.words if w[1] < left or w[3] > right or w[2] < 0 or w[4] > page.height]
        assert not outside, f"page {number} ({page.width:.0f}x{page.height:.0f}): words outside the content box: {outside[:5]}"


def _frame(columns: int, rows: int, *, scale: int) -> pd.DataFrame:
    """Numbers up to ``scale`` with two decimals; row labels "r0", "r1", ..."""
    data = {f"c{c + 1:02d}": [((r * 7919 + c * 104729) % scale) + (r + c) % 100 / 100 for r in range(rows)] for c in range(columns)}
    return pd.DataFrame(data, index=pd.Index([f"r{r}" for r in range(rows)], name="row"))


def _table(name: str, frame: pd.DataFrame, caption: str) -> rec.Table:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return rec.Table(name, buffer.getvalue(), caption=caption)


def _render(project, tmp_path, tables: dict[str, pd.DataFrame], *, long_table_rows=longtable.LONG_TABLE_ROWS, texts=()):
    records = {name: _table(name, frame, f"Table {name}") for name, frame in tables.items()}
    records.update({f"text{i}": rec.Text(f"text{i}", markdown) for i, markdown in enumerate(texts)})
    spec = ReportSpec(name="wide", title="Wide Report", notebook=Path("wide.ipynb"))
    context = ReportContext(spec=spec, params={}, run_id="run-1", generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))
    rendered = render_report(context, records, {}, project.templates_dir, long_table_rows=long_table_rows)
    pdf = tmp_path / "report.pdf"
    result = write_pdf(rendered.html, pdf, base_dir=tmp_path, templates_dir=project.templates_dir, workers=2)
    pages = _pages(pdf)
    assert result.pages == len(pages)
    return rendered, pdf, pages


def _cells(frame: pd.DataFrame) -> set[str]:
    """Every header and distinct cell as the PDF shows it (two decimals, thousands separators)."""
    values = {f"{v:,.2f}" for v in frame.to_numpy().ravel()}
    return values | {str(c) for c in frame.columns} | {str(i) for i in frame.index}


def _orientation(pdf: Path) -> list[str]:
    boxes = [page.mediabox for page in PdfReader(str(pdf)).pages]
    return ["landscape" if box.width > box.height else "portrait" for box in boxes]


def test_8_24_and_80_columns_and_long_text_stay_on_the_page_and_every_cell_is_shown(project, tmp_path):
    long_word, url = "x" * 240, "https://example.com/" + "/".join(f"segment{i}" for i in range(30))
    prose = " ".join(f"word{i}" for i in range(90))
    text = pd.DataFrame({"id": [1, 2, 3, 4], "note": ["short", long_word, url, prose], "value": [1.5, 2.5, 3.5, 4.5]})
    tables = {
        "eight": _frame(8, 4, scale=1000),  # fits at the report's font
        "twelve": _frame(12, 3, scale=1000),  # smaller font
        "twentyfour": _frame(24, 3, scale=1000),  # landscape
        "eighty": _frame(80, 3, scale=10**6),  # column groups
        "text": text,  # fits once its text wraps
    }
    code = "print('" + "z" * 200 + "')"
    rendered, pdf, pages = _render(project, tmp_path, tables, texts=[f"See <{url}>.", f"```\n{code}\n```"])

    layouts = rendered.layouts
    assert {name: layouts[name]["rule"] for name in tables} == {
        "eight": "fits", "twelve": "smaller_font", "twentyfour": "landscape", "eighty": "column_groups", "text": "fits",
    }
    assert 6 <= layouts["twelve"]["font_pt"] < 8.5 and 6 <= layouts["twentyfour"]["font_pt"] <= 8.5
    assert layouts["eighty"]["groups"] >= 4 and layouts["eighty"]["font_pt"] == 8.5
    _assert_inside(pages)
    words = {w[0] for page in pages for w in page.words}
    for name in ("eight", "twelve", "twentyfour", "eighty"):
        missing = _cells(tables[name]) - words
        assert not missing, f"{name}: not in the PDF: {sorted(missing)[:10]}"
    squeezed = re.sub(r"\s+", "", "".join(page.text for page in pages))
    for cell in [long_word, url, prose, "short", code]:
        assert re.sub(r"\s+", "", cell) in squeezed  # wrapped, never cut

    # Column groups: each captioned, each repeating the row labels.
    groups = layouts["eighty"]["groups"]
    captions = re.findall(r"Columns (\d+)–(\d+) of 80", " ".join(page.text for page in pages))
    assert len(captions) == groups and captions[0][0] == "1" and captions[-1][1] == "80"
    assert sum(page.text.count("r2") for page in pages) >= groups  # the last row label, once per group

    # Only the landscape table's pages are landscape; the report's are portrait.
    holding = [i for i, page in enumerate(pages) if "Table twentyfour" in page.text]
    turned = [i for i, o in enumerate(_orientation(pdf)) if o == "landscape"]
    assert holding == turned  # the table after it is back on the report's own pages


def test_long_tables_keep_their_chunks_and_obey_the_rule(project, tmp_path):
    tables = {"turned": _frame(24, 45, scale=1000), "grouped": _frame(20, 22, scale=10**6)}
    rendered, pdf, pages = _render(project, tmp_path, tables, long_table_rows=20)

    html_text = rendered.html
    assert rendered.layouts["turned"]["rule"] == "landscape" and rendered.layouts["grouped"]["rule"] == "column_groups"
    assert html_text.count(longtable.BEGIN) == 1 + rendered.layouts["grouped"]["groups"]  # one marked table per group
    _assert_inside(pages)
    words = {w[0] for page in pages for w in page.words}
    for name, frame in tables.items():
        missing = _cells(frame) - words
        assert not missing, f"{name}: not in the PDF: {sorted(missing)[:10]}"
    orientation = _orientation(pdf)
    turned = [i for i, o in enumerate(orientation) if o == "landscape"]
    assert len(turned) >= 2 and all("c24" in pages[i].text for i in turned)  # every page of it repeats its header
    assert orientation[turned[-1] + 1] == "portrait"
    for number, page in enumerate(pages, 1):
        assert f"Page {number} of {len(pages)}" in page.text


def test_the_rule_is_chosen_from_widths_without_a_layout(project):
    fonts = fonts_in(project.templates_dir)
    wide = _frame(24, 3, scale=1000)
    assert plan_layout(_frame(8, 3, scale=1000), A4, fonts).rule == "fits"
    assert plan_layout(wide, A4, fonts).rule == "landscape"
    turned = page_box(PageSettings(size="A4 landscape"))  # already landscape: no landscape step
    assert plan_layout(wide, turned, fonts).rule in ("fits", "smaller_font")
    assert plan_layout(_frame(80, 3, scale=10**6), turned, fonts).rule == "column_groups"
    # A long table whose one column cannot fit on one line even alone is not laid out as one.
    huge = pd.DataFrame({"text": ["y" * 600]})
    assert plan_layout(huge, A4, fonts, wrap=False) is None
    assert plan_layout(huge, A4, fonts).rule == "fits"  # wrapped


@pytest.mark.parametrize(("settings", "expected_mm"), [
    (PageSettings(), (210, 297, 178)),
    (PageSettings(size="letter landscape", margin="1in"), (279.4, 215.9, 279.4 - 50.8)),
    (PageSettings(size="200mm 100mm", margin="10mm 5mm"), (200, 100, 190)),
])
def test_page_box_reads_the_spec_page(settings, expected_mm):
    box = page_box(settings)
    assert [round(v / MM, 1) for v in (box.width, box.height, box.content_width)] == [round(v, 1) for v in expected_mm]


def test_a_run_records_each_tables_rule_in_run_json(project):
    make_notebook(
        project.notebooks_dir / "wide.ipynb",
        "columns: int = 30",
        """
        import pandas as pd, toolkit as tk
        frame = pd.DataFrame({f"metric_{c}": [c * 1000 + r * 0.25 for r in range(3)] for c in range(columns)},
                             index=pd.Index(["north", "south", "east"], name="region"))
        tk.table("wide", frame, caption="Thirty columns")
        tk.table("narrow", frame.iloc[:, :3], caption="Three columns")
        """,
    )
    run_dir, record = run_report(prepare(find_report("wide", project.notebooks_dir), {}), project)
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["layout"]["narrow"] == {"rule": "fits", "font_pt": 8.5, "groups": 1, "columns": 3}
    wide = saved["layout"]["wide"]
    assert wide["rule"] in ("landscape", "column_groups") and wide["columns"] == 30
    pages = _pages(run_dir / "report.pdf")
    _assert_inside(pages)
    words = {w[0] for page in pages for w in page.words}
    assert {f"metric_{c}" for c in range(30)} <= words and "29,000.50" in words
