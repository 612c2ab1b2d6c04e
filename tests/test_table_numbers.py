"""Table cells as the notebook shows them: pandas' precision, formats from the spec or tk.table,
text columns left-aligned and numbers right-aligned (checked in a real PDF with pdftotext -bbox)."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import table_record
from toolkit.errors import RecordError, RenderError, SpecError
from toolkit.inputs.spec import ReportSpec, TableOptions, load_spec
from toolkit.notebook import analyst_api
from toolkit.notebook import records as rec
from toolkit.render.html import ReportContext, render_html
from toolkit.render.pdf import write_pdf

CELL = re.compile(r"<td\b[^>]*>(.*?)</td>", re.S)


def _table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> rec.Table:
    return table_record("t", frame, "Cities", formats)


def _html(templates: Path, table: rec.Table, *, locale: str = "en", formats: dict[str, str] | None = None) -> str:
    spec = ReportSpec(name="n", title="Numbers", notebook=Path("n.ipynb"), locale=locale,
                      tables={"t": TableOptions(formats=formats or {})})
    context = ReportContext(spec=spec, params={}, run_id="run-1", generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))
    return render_html(context, {"t": table}, {}, templates)


def _cells(html: str) -> list[str]:
    return [html_lib.unescape(c) for c in CELL.findall(html)]


FRAME = pd.DataFrame({"city": ["Zürich", "Bern"], "ratio": [1.7, 2.5], "value": [0.125, 12345.678],
                      "count": [7, 1234567], "gap": [float("nan"), -1.5]})


def test_numbers_keep_the_notebooks_precision(project):
    assert _cells(_html(project.templates_dir, _table(FRAME))) == [
        "Zürich", "1.7", "0.125", "7", "–",
        "Bern", "2.5", "12,345.678", "1,234,567", "-1.5",
    ]  # pandas' repr of each column, with thousands separators
    german = _cells(_html(project.templates_dir, _table(FRAME), locale="de_DE"))
    assert german[5:] == ["Bern", "2,5", "12.345,678", "1.234.567", "-1,5"]


def test_formats_from_tk_table_and_the_spec_the_spec_winning(project):
    table = _table(FRAME, {"ratio": "{:.3f}", "value": "{:.0f}"})
    cells = _cells(_html(project.templates_dir, table, locale="de_DE", formats={"value": "{:,.2f} €", "count": ".1e"}))
    assert cells[5:] == ["Bern", "2,500", "12.345,68 €", "1,2e+06", "-1,5"]
    assert cells[:5] == ["Zürich", "1,700", "0,12 €", "7,0e+00", "–"]


def test_bad_formats_are_refused_where_they_are_written(project, tmp_path):
    with pytest.raises(RenderError, match=r"formats name no column 'cuont'"):
        _html(project.templates_dir, _table(FRAME), formats={"cuont": "{:,}"})
    with pytest.raises(RenderError, match=r"column 'city': format '\{:,.2f\}' cannot show 'Zürich'"):
        _html(project.templates_dir, _table(FRAME), formats={"city": "{:,.2f}"})
    spec = tmp_path / "n.yml"
    spec.write_text("title: N\ntables:\n  t:\n    formats:\n      value: '{:.2f} / {}'\n")
    with pytest.raises(SpecError, match="exactly one field"):
        load_spec(spec)
    with pytest.raises(RecordError, match="formats name no column 'nope'"):
        analyst_api.table("t", FRAME, formats={"nope": "{:.1f}"})
    record = analyst_api.table("t2", FRAME, formats={"value": ",.1f"})
    assert rec.decode(rec.encode(record)).formats == (("value", "{:,.1f}"),)  # travels in the notebook


def _words(pdf: Path) -> list[tuple[str, float, float, float]]:
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    found = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', out)
    return [(html_lib.unescape(w), float(x0), float(y0), float(x1)) for x0, y0, x1, w in found]


def test_text_columns_are_left_aligned_and_numbers_right_aligned_in_the_pdf(project, tmp_path):
    frame = pd.DataFrame({"city": ["Zürich", "Bern", "Genève-Lac"], "value": [0.125, 12345.678, 3.5],
                          "count": [10, 22, 3000]}, index=pd.Index(["a", "bb", "ccc"], name="key"))
    pdf = tmp_path / "report.pdf"
    write_pdf(_html(project.templates_dir, _table(frame)), pdf, base_dir=tmp_path, templates_dir=project.templates_dir)
    words = _words(pdf)

    def column(*texts: str, edge: int) -> list[float]:
        return [next(w[edge] for w in words if w[0] == t) for t in texts]

    lefts = column("city", "Zürich", "Bern", "Genève-Lac", edge=1)
    index = column("key", "a", "bb", "ccc", edge=1)
    values = column("value", "0.125", "12,345.678", "3.500", edge=3)
    counts = column("count", "10", "22", "3,000", edge=3)
    for xs in (lefts, index, values, counts):
        assert max(xs) - min(xs) < 0.5, xs  # header and cells share the column's edge
    assert lefts[0] < values[0] - 100  # the text column's edge is its left one, well left of the numbers' right
