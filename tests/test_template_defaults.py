"""Built-in templates: shipped in the package, overridden by a project's templates/ file by file.

Real parts: the `nbpress` console script on a notebook outside any project, WeasyPrint PDFs read
back with pdffonts/pdftotext, the fenced fetcher itself, pyproject.toml's package data.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli, make_notebook, pdf_text
from toolkit.inputs.spec import ReportSpec
from toolkit.notebook import records as rec
from toolkit.render.fetcher import FencedFetcher, Refused
from toolkit.render.html import ReportContext, render_html
from toolkit.render.pdf import write_pdf
from toolkit.render.template_folders import BUILTIN, static_folders

BUILTIN_FILES = ("base.html.j2", "macros.html.j2", "static/report.css", "static/fonts/DejaVuSans.ttf",
                 "static/fonts/DejaVuSans-Bold.ttf", "static/fonts/DejaVuSansMono.ttf")


def _fonts(pdf: Path) -> str:
    return subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout


def test_the_builtin_templates_are_package_data_and_nowhere_else_in_the_repository():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["toolkit"]
    shipped = {p.relative_to(ROOT / "toolkit").as_posix() for p in BUILTIN.rglob("*") if p.is_file()}
    assert {f"templates/{name}" for name in BUILTIN_FILES} <= shipped
    unpackaged = {name for name in shipped if not any(fnmatch.fnmatch(name, pattern) and name.count("/") == pattern.count("/")
                                                     for pattern in data)}
    assert not unpackaged, f"a wheel would miss these (add them to [tool.setuptools.package-data]): {unpackaged}"
    # The repository's own templates/ is the demo project's: its report template only, no copies.
    assert sorted(p.name for p in (ROOT / "templates").rglob("*") if p.is_file()) == ["weekly_statistics.html.j2"]


def test_a_notebook_outside_any_project_renders_with_the_builtin_templates(tmp_path):
    frame = 'pd.DataFrame({"word": ["zebra"], "ratio": [1.7], "share": [0.125]})'
    notebook = make_notebook(tmp_path / "some" / "where" / "analysis.ipynb", None,
                             f'import pandas as pd, toolkit as tk\ntk.table("t", {frame}, caption="Loose", formats={{"share": "{{:.1%}}"}})')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = cli("run", str(notebook), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    [run_dir] = (elsewhere / "runs" / "analysis").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["refused_resources"] == []
    text = pdf_text(run_dir / "report.pdf")
    assert "Loose" in text and "zebra" in text
    assert "1.7\n" in text and "12.5%" in text  # the notebook's precision; its tk.table(formats=...)
    assert "Report-Sans" in _fonts(run_dir / "report.pdf")  # report.css and its fonts came from the package


def _render(templates: Path, out: Path, template: str = "base.html.j2") -> Path:
    spec = ReportSpec(name="o", title="Override Report", notebook=Path("o.ipynb"), template=template)
    context = ReportContext(spec=spec, params={}, run_id="run-1", generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))
    html = render_html(context, {"note": rec.Text("note", "Body text")}, {}, templates)
    pdf = out / "report.pdf"
    result = write_pdf(html, pdf, base_dir=out, templates_dir=templates)
    assert result.refused == []
    return pdf


def test_a_project_overrides_the_defaults_file_by_file(tmp_path):
    templates = tmp_path / "templates"
    (templates / "static").mkdir(parents=True)
    # The project's base extends the built-in one by its fixed name; macros.html.j2 stays built-in.
    (templates / "base.html.j2").write_text(
        '{% extends "nbpress/base.html.j2" %}{% block head %}<style>h1 { font-family: "Own" }</style>{% endblock %}'
        '{% block content %}<p>Project base</p>{{ super() }}{% endblock %}')
    # The project's stylesheet; its font is the package's, found through the fetcher's layers.
    (templates / "static" / "report.css").write_text(
        '@font-face { font-family: "Own"; src: url(fonts/DejaVuSansMono.ttf); } body { font-family: "Own" }')
    pdf = _render(templates, tmp_path)
    text = pdf_text(pdf)
    assert "Project base" in text and "Body text" in text and "Override Report" in text
    fonts = _fonts(pdf)
    assert "Own" in fonts and "Report-Sans" not in fonts  # the built-in report.css was not used


def test_a_long_lived_process_sees_template_edits_and_new_overrides(tmp_path):
    """Environments are cached per process (a batch worker, `nbpress worker`): an edited
    template and an override added later still count on the next render."""
    spec = ReportSpec(name="o", title="Cached Report", notebook=Path("o.ipynb"))
    context = ReportContext(spec=spec, params={}, run_id="run-1", generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))
    templates = tmp_path / "templates"
    templates.mkdir()
    records = {"note": rec.Text("note", "Body text")}
    assert "Body text" in render_html(context, records, {}, templates)  # the built-in base.html.j2
    (templates / "base.html.j2").write_text('{% extends "nbpress/base.html.j2" %}{% block content %}<p>Added</p>{% endblock %}')
    assert "<p>Added</p>" in render_html(context, records, {}, templates)
    override = templates / "base.html.j2"
    override.write_text('{% extends "nbpress/base.html.j2" %}{% block content %}<p>Edited</p>{% endblock %}')
    os.utime(override, ns=(override.stat().st_mtime_ns + 2_000_000_000,) * 2)  # a later second, as an editor's save
    html = render_html(context, records, {}, templates)
    assert "<p>Edited</p>" in html and "<p>Added</p>" not in html


def test_the_fetcher_serves_each_static_file_from_the_first_layer_that_has_it(tmp_path):
    project_static, run = tmp_path / "templates" / "static", tmp_path / "run"
    (project_static / "fonts").mkdir(parents=True)
    run.mkdir()
    (project_static / "fonts" / "DejaVuSans.ttf").write_bytes(b"project font")
    (tmp_path / "secret.txt").write_text("secret")
    (project_static / "leak.txt").symlink_to(tmp_path / "secret.txt")
    fetcher = FencedFetcher([run], static_folders(tmp_path / "templates"))

    def read(url: str) -> bytes:
        response = fetcher.fetch(url)
        try:
            return response.read()
        finally:
            response.close()

    builtin_static = BUILTIN / "static"
    assert read((project_static / "fonts" / "DejaVuSans.ttf").as_uri()) == b"project font"
    assert read((builtin_static / "fonts" / "DejaVuSans.ttf").as_uri()) == b"project font"  # the project wins by name
    assert read((project_static / "report.css").as_uri()) == (builtin_static / "report.css").read_bytes()  # the default
    for outside in [(project_static / "leak.txt").as_uri(), project_static.as_uri() + "/../../secret.txt",
                    (builtin_static / ".." / "base.html.j2").as_uri(), "http://example.com/x.css"]:
        with pytest.raises(Refused):
            fetcher.fetch(outside)
    assert len(fetcher.refused) == 4
