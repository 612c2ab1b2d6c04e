"""Long tables laid out in parallel chunks: real WeasyPrint, real worker processes, pdftotext.

Thresholds are set low so a table of a few hundred to a couple of thousand rows is cut into
several chunks that run at the same time in this process and a spawned worker.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import subprocess
from pathlib import Path

import pandas as pd

from tests.conftest import make_notebook
from tests.helpers import table_record
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import ReportSpec, TableOptions, find_report
from toolkit.notebook import records as rec
from toolkit.render import longtable
from toolkit.render.html import ReportContext, render_html
from toolkit.render.inspect_pdf import inspect_pdf
from toolkit.render.pdf import write_pdf
from toolkit.runs.pipeline import run_report

HEADER = re.compile(r"\brow\s+day\s+source\s+events\s+share\s+user\b")
ROW = re.compile(r"^\s*(\d+)\s+\d{4}-\d{2}-\d{2}\s", re.M)


def _frame(rows: int) -> pd.DataFrame:
    start = dt.date(2026, 1, 1)
    return pd.DataFrame(
        {
            "day": [start + dt.timedelta(days=i % 365) for i in range(rows)],
            "source": [("web", "api", "batch", "mobile")[i % 4] for i in range(rows)],
            "events": [i * 7919 % 1_000_003 for i in range(rows)],
            "share": [(i % 97) / 97 for i in range(rows)],
            "user": [f"user-{i * 31 % 100_000:05d}" for i in range(rows)],
        },
        index=pd.RangeIndex(rows, name="row"),
    )


_table = table_record


def _html(project, records, *, long_table_rows: int, tables=None, template=None) -> str:
    spec = ReportSpec(name="long", title="Long Report", notebook=Path("long.ipynb"), tables=tables or {})
    context = ReportContext(
        spec=spec, params={"week": "2026-11-16"}, run_id="run-1", generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    )
    return render_html(context, records, {}, project.templates_dir, template=template, long_table_rows=long_table_rows)


def _pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def _check_table(pages: list[str], rows: int | list[int]) -> None:
    """Every row once and in order, the header row on every page with rows, "Page i of N" on page i."""
    seen = []
    for number, page in enumerate(pages, 1):
        found = [int(n) for n in ROW.findall(page)]
        assert not found or HEADER.search(page), f"page {number} has rows but no header row"
        assert f"Page {number} of {len(pages)}" in page, f"page {number}: wrong footer"
        seen += found
    assert seen == (list(range(rows)) if isinstance(rows, int) else rows)


def test_long_table_in_chunks_keeps_rows_headers_page_numbers_and_metadata(project, tmp_path):
    rows = 1500
    records = {
        "intro": rec.Text("intro", "Text **before** the long table."),
        "events": _table("events", _frame(rows), "All events"),
        "small": _table("small", _frame(3), "A small table"),
        "outro": rec.Text("outro", "Text after the long table."),
    }
    html = _html(project, records, long_table_rows=400)
    assert html.count(longtable.BEGIN) == 1  # only the long table is marked
    pdf = tmp_path / "report.pdf"
    result = write_pdf(html, pdf, base_dir=tmp_path, templates_dir=project.templates_dir, attachments=[("events.csv", b"row\n0\n")])

    pages = _pages(pdf)
    assert result.pages == len(pages) > 2 * longtable.CHUNK_PAGES  # several chunks
    assert not list(tmp_path.glob(".parts-*"))  # the parts are cleaned up
    _check_table(pages, [*range(rows), 0, 1, 2])  # the small table's rows 0-2 come after the long one
    assert "Text before the long table." in pages[0] and "All events" in pages[0]  # the long table starts under the text
    text = "\f".join(pages)
    last_row = re.search(rf"^\s*{rows - 1}\s+\d{{4}}-", text, re.M)
    assert text.index("A small table", last_row.end()) < text.index("Text after the long table.", last_row.end())
    info = inspect_pdf(pdf)
    assert info["title"] == "Long Report" and info["pages"] == len(pages)
    assert info["provenance"]["run_id"] == "run-1" and info["provenance"]["parameters"] == {"week": "2026-11-16"}
    assert info["attachments"] == ["events.csv"]


def test_chunked_path_keeps_the_fetcher_fence_and_max_rows(project, tmp_path):
    (project.templates_dir / "evil.html.j2").write_text(
        """{% extends "base.html.j2" %}
        {% block head %}<style>table.data th { background: url(file:///etc/passwd); }</style>{% endblock %}
        {% block content %}<img src="file:///etc/hostname">{{ super() }}{% endblock %}"""
    )
    records = {"events": _table("events", _frame(600), "Cut events")}
    html = _html(project, records, long_table_rows=50, tables={"events": TableOptions(max_rows=150)}, template="evil.html.j2")
    pdf = tmp_path / "report.pdf"
    result = write_pdf(html, pdf, base_dir=tmp_path, templates_dir=project.templates_dir, workers=2)

    assert {"file:///etc/passwd", "file:///etc/hostname"} <= set(result.refused)
    pages = _pages(pdf)
    _check_table(pages, 150)
    assert "Showing 150 of 600 rows" in pages[-1]
    assert b"root:x:0:0" not in pdf.read_bytes()


def test_a_row_taller_than_planned_is_caught_and_numbers_stay_right(project, tmp_path, caplog):
    html = _html(project, {"events": _table("events", _frame(200), "Events")}, long_table_rows=50)
    tall = '<tr>\n      <th>150</th><td>2026-05-31</td><td>api<br>and<br>web<br>and<br>more</td><td>1</td><td>0.5</td><td>user-1</td>\n    </tr>'
    html = re.sub(r"<tr>\s*<th[^>]*>150</th>.*?</tr>", lambda m: tall, html, count=1, flags=re.S)
    pdf = tmp_path / "report.pdf"
    with caplog.at_level(logging.WARNING, logger="toolkit.render.longtable"):
        longtable.write_pdf(html, pdf, base_dir=tmp_path, templates_dir=project.templates_dir, chunk_pages=2, workers=2)
    assert "writing them again" in caplog.text
    _check_table(_pages(pdf), 200)


def test_html_that_cannot_be_cut_is_laid_out_in_one_piece(project, tmp_path):
    html = _html(project, {"events": _table("events", _frame(60), "Events")}, long_table_rows=10)
    html = html.replace('<th scope="row">3</th>', '<th scope="row" rowspan="2">3</th>', 1)  # cells spanning rows: no safe cut
    assert longtable.write_pdf(html, tmp_path / "x.pdf", base_dir=tmp_path, templates_dir=project.templates_dir) is None
    result = write_pdf(html, tmp_path / "report.pdf", base_dir=tmp_path, templates_dir=project.templates_dir)
    assert result.pages >= 2 and "Page 1 of" in _pages(tmp_path / "report.pdf")[0]


def test_pages_counter_is_renamed_only_in_counter_calls():
    css = '@bottom-right { content: "Page " counter(page) " of " counter( pages ) counters(pages, ".") } .pages { }'
    assert longtable.rename_pages_counter(css) == (
        '@bottom-right { content: "Page " counter(page) " of " counter( nbpress-pages ) counters(nbpress-pages, ".") } .pages { }'
    )


def test_nbpress_run_uses_the_chunked_layout_for_long_tables(project, monkeypatch):
    monkeypatch.setattr(longtable, "LONG_TABLE_ROWS", 300)
    make_notebook(
        project.notebooks_dir / "big.ipynb",
        "rows: int = 700",
        """
        import pandas as pd, toolkit as tk
        frame = pd.DataFrame({"day": pd.date_range("2026-01-01", periods=rows).date, "source": "web",
                              "events": range(rows), "share": 0.5, "user": [f"user-{i:05d}" for i in range(rows)]},
                             index=pd.RangeIndex(rows, name="row"))
        tk.table("events", frame, caption="Every event")
        """,
    )
    run_dir, record = run_report(prepare(find_report("big", project.notebooks_dir), {}), project)
    assert longtable.BEGIN in (run_dir / "report.html").read_text()
    pages = _pages(run_dir / "report.pdf")
    assert record.pages == len(pages)
    _check_table(pages, 700)
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "succeeded" and saved["pages"] == len(pages)
