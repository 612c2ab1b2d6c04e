"""Every script renders: Latin, Greek, Cyrillic, Chinese, Japanese, Korean, Arabic and Hebrew come
out as real glyphs (Noto after DejaVu, in the PDF and in charts), right-to-left text in reading
order; a character no font has is named in run.json and on stderr, and can fail the run.

Real kernels and real PDFs (pdftotext, pdffonts); the page images were also looked at by eye.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, cli, make_notebook, pdf_text
from toolkit.errors import MissingGlyphError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import ReportSpec, find_report
from toolkit.notebook import records as rec
from toolkit.notebook.chart_fonts import FALLBACK_FAMILIES
from toolkit.render.glyphs import find_missing
from toolkit.project import Project
from toolkit.runs.pipeline import run_report

# One string per script, each in a table cell, and more in the other kinds of record.
CITIES = {
    "Latin": "Zürich",
    "Greek": "Αθήνα",
    "Cyrillic": "Москва",
    "Chinese": "北京市",
    "Japanese": "東京とカタカナ",
    "Korean": "서울특별시",
    "Arabic": "القاهرة",
    "Hebrew": "ירושלים",
}
NO_FONT = "\ue000"  # private use: checked below that no installed font has it

SCRIPTS_NOTEBOOK = f'''
import pandas as pd, matplotlib.pyplot as plt, toolkit as tk
cities = {CITIES!r}
df = pd.DataFrame({{"city": list(cities.values()), "visits": range(1, 9)}}, index=pd.Index(list(cities), name="script"))
tk.table("cities", df, caption="Städte — 城市 — 도시 — مدن — ערים")
tk.metric("top", "東京", label="Größte Stadt · 最大の都市 · أكبر مدينة")
tk.text("note", "Καλημέρα, Привет, 你好, こんにちは, 안녕하세요, مرحبا بالعالم, שלום עולם.")
fig, ax = plt.subplots(figsize=(4, 2)); ax.bar(["東京", "서울", "Москва"], [3, 2, 1]); ax.set_title("売上 Umsatz")
tk.figure("east", fig, caption="Chart 東アジア")
fig, ax = plt.subplots(figsize=(4, 2)); ax.bar(["القاهرة", "ירושלים"], [1, 2])
tk.figure("rtl", fig, caption="Chart الشرق الأوسط")
'''


MISSING_NOTEBOOK = f"""
import pandas as pd, matplotlib.pyplot as plt, toolkit as tk
tk.table("codes", pd.DataFrame({{"code": ["ok", "a{NO_FONT}b"]}}))
tk.metric("ok", 1, label="fine \u200f label")  # a right-to-left mark draws nothing: not reported
fig, ax = plt.subplots(figsize=(3, 2)); ax.set_title("x{NO_FONT}y")
tk.figure("chart", fig)
"""


def _project(root, name: str, notebook: str, spec: str) -> Project:
    shutil.copytree(ROOT / "templates", root / "templates")
    project = Project(root)
    make_notebook(project.notebooks_dir / f"{name}.ipynb", 'region: str = "関東"', notebook)
    (project.notebooks_dir / f"{name}.yml").write_text(spec, encoding="utf-8")
    return project


def test_eight_scripts_render_with_real_glyphs(tmp_path):
    # One run, one test: a shared fixture would run once per xdist worker.
    project = _project(tmp_path, "scripts", SCRIPTS_NOTEBOOK, "title: Scripts — 報告書 — تقرير\n")
    run_dir, record = run_report(prepare(find_report("scripts", project.notebooks_dir), {}), project)
    assert record.status == "succeeded" and record.missing_glyphs == []  # matplotlib found every glyph too

    text = pdf_text(run_dir / "report.pdf")
    for city in CITIES.values():  # table cells; Arabic and Hebrew in logical order, as typed
        assert city in text
    assert "報告書" in text and "تقرير" in text  # title
    assert "関東" in text  # a parameter's value, on one line
    assert "城市" in text and "도시" in text and "ערים" in text  # table caption
    assert "最大の都市" in text and "أكبر مدينة" in text  # metric label
    assert "Привет" in text and "こんにちは" in text and "안녕하세요" in text and "שלום עולם" in text  # text record
    assert "売上 Umsatz" in text  # a chart's text stays text when it needs no shaping
    assert "Chart 東アジア" in text and "الشرق" in text  # figure captions

    fonts = subprocess.run(["pdffonts", str(run_dir / "report.pdf")], capture_output=True, text=True, check=True).stdout
    assert "Noto-Sans-CJK-JP" in fonts and "Report-Sans" in fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # "emb" column: embedded

    east, rtl = ((run_dir / "assets" / f"{name}.svg").read_text(encoding="utf-8") for name in ("east", "rtl"))
    assert "東京" in east and "sans-serif, 'Noto Sans', 'Noto Sans CJK JP'" in east  # fallbacks after the default
    assert "<text" not in rtl and "<path" in rtl  # right to left: shaped by matplotlib, drawn as paths


def test_css_and_charts_name_the_same_fallback_chain():
    css = (ROOT / "toolkit" / "templates" / "static" / "report.css").read_text(encoding="utf-8")
    chain = ", ".join(f'"{family}"' for family in ("Report Sans", *FALLBACK_FAMILIES))
    assert f"html {{ font-family: {chain}, sans-serif;" in css


def test_no_installed_font_has_the_test_character():
    listed = subprocess.run(["fc-list", f":charset={ord(NO_FONT):x}", "file"], capture_output=True, text=True, check=True)
    assert listed.stdout == ""


def test_each_place_of_a_missing_character_is_named(tmp_path):
    spec = ReportSpec.model_validate({"name": "m", "title": f"T{NO_FONT}", "notebook": "m.ipynb"})
    records = {
        "total": rec.Metric("total", f"1{NO_FONT}", label="東京"),
        "note": rec.Text("note", f"Привет {NO_FONT} \u200d\ufe0f"),  # joiner, variation selector: invisible
        "chart": rec.Figure("chart", "<svg/>", b"", f"cap{NO_FONT}", missing_glyphs=(0x1FAE8,)),
    }
    missing = find_missing(spec, {"region": f"r{NO_FONT}"}, records, ROOT / "templates")
    assert [(m.codepoint, m.where) for m in missing] == [
        ("U+E000", ["title", "parameter region", "metric total", "text note", "figure chart"]),
        ("U+1FAE8", ["figure chart"]),  # as matplotlib reported it
    ]
    assert find_missing(spec.model_copy(update={"title": "Zürich 東京 القاهرة"}), {}, {}, ROOT / "templates") == []


def test_missing_character_is_named_in_run_json_and_on_stderr(tmp_path):
    project = _project(tmp_path, "missing", MISSING_NOTEBOOK, "title: Missing\n")
    result = cli("run", "missing", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "no installed font can draw U+E000 '\\ue000' in table codes, figure chart" in result.stderr
    run_dir = next((project.runs_dir / "missing").iterdir())
    saved = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["status"] == "succeeded" and (run_dir / "report.pdf").exists()
    assert saved["missing_glyphs"] == [
        {"char": NO_FONT, "codepoint": "U+E000", "name": "", "where": ["table codes", "figure chart"]}
    ]


def test_missing_glyphs_fail_fails_the_render(tmp_path):
    project = _project(tmp_path, "strict", MISSING_NOTEBOOK, "title: Strict\nmissing_glyphs: fail\n")
    with pytest.raises(MissingGlyphError) as failed:
        run_report(prepare(find_report("strict", project.notebooks_dir), {}), project)
    assert str(failed.value).startswith("no installed font can draw 1 character(s): U+E000 '\\ue000' in table codes, figure chart")
    run_dir = failed.value.run_dir
    saved = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["status"] == "failed" and not (run_dir / "report.pdf").exists()
    assert saved["error"]["stage"] == "render" and saved["error"]["type"] == "MissingGlyphError"
    assert saved["missing_glyphs"][0]["codepoint"] == "U+E000"
