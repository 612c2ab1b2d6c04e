"""The reader sees what the author chose: which parameters the PDF shows, and their labels.

Without ``show_parameters`` the PDF hides URLs, filesystem paths, secret-looking names and
``Secret`` parameters; with it, the spec's mapping name -> label orders and labels the body and
the running header. Real kernels, real PDFs, pdftotext.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_notebook, pdf_text
from toolkit.errors import SpecError
from toolkit.inputs.prepare import prepare, read_inputs
from toolkit.inputs.spec import find_report
from toolkit.render.inspect_pdf import inspect_pdf
from toolkit.runs.pipeline import run_report

PARAMETERS = """
import datetime
region: str = "north"
n: int = 3
db_url: str = "postgresql://reader:hunter2@db.example/events"
out_dir: str = "/srv/reports/out"
api_token: str = "tok-zebra-42"
"""
# Enough rows for more than one page, so the running header is checked on every page.
BODY = """
import pandas as pd, toolkit as tk
tk.table("rows", pd.DataFrame({"value": range(120)}), caption="Many rows")
"""


def _report(project, spec: str = "") -> None:
    make_notebook(project.notebooks_dir / "shown.ipynb", PARAMETERS, BODY)
    (project.notebooks_dir / "shown.yml").write_text("title: Shown\n" + spec, encoding="utf-8")


def _run(project):
    return run_report(prepare(find_report("shown", project.notebooks_dir)), project)


def test_by_default_urls_paths_and_secret_names_are_not_shown(project):
    _report(project, "header_parameters: [region, db_url]\n")
    run_dir, record = _run(project)
    text = pdf_text(run_dir / "report.pdf")
    assert "region" in text and "north" in text and "n" in text.split()
    for hidden in ("db_url", "db.example", "hunter2", "out_dir", "/srv/reports", "api_token", "tok-zebra"):
        assert hidden not in text, hidden
    header = "region: north"  # db_url is in header_parameters but a URL: hidden there too
    for number in range(1, record.pages + 1):
        assert header in pdf_text(run_dir / "report.pdf", page=number).splitlines()
    provenance = inspect_pdf(run_dir / "report.pdf")["provenance"]["parameters"]
    assert provenance["db_url"] == "postgresql://reader:***@db.example/events"  # kept for inspect, masked
    assert provenance["api_token"] == "***" and provenance["region"] == "north"


def test_show_parameters_orders_and_labels_body_and_header(project):
    _report(project, "show_parameters: {n: Count, region: Sales region}\nheader_parameters: [region, n]\n")
    run_dir, record = _run(project)
    assert record.pages >= 2
    flat = re.sub(r"\s+", " ", pdf_text(run_dir / "report.pdf", page=1))
    assert flat.index("Count 3") < flat.index("Sales region north")  # the spec's order, its labels
    assert "db_url" not in flat and "db.example" not in flat and "/srv/reports" not in flat
    header = "Sales region: north · Count: 3"  # header_parameters' order, show_parameters' labels
    for number in range(1, record.pages + 1):
        page = pdf_text(run_dir / "report.pdf", page=number)
        assert header in page.splitlines(), f"page {number}:\n{page[:300]}"
        assert "region:" not in page.replace("Sales region:", "")


def test_show_parameters_can_choose_to_show_a_url_but_never_its_password():
    from toolkit.render.shown import shown_parameters

    class Spec:
        show_parameters = {"db_url": "Database"}
        header_parameters: list[str] = []

    shown = shown_parameters(Spec(), {"db_url": "postgresql://reader:hunter2@db/events", "n": 3})
    assert shown == {"Database": "postgresql://reader:***@db/events"}


@pytest.mark.parametrize(("spec", "key", "message"), [
    ("show_parameters: {nope: Nope}\n", "show_parameters", "'nope' is not a parameter of the notebook"),
    ("show_parameters: {password: Password}\n", "show_parameters", "'password' is a secret: it is never shown"),
    ("show_parameters: {region: Region}\nheader_parameters: [n]\n", "header_parameters", "'n' is not shown"),
    ("show_parameters: {region: ''}\n", "show_parameters", "label"),
    ("show_parameters: [region]\n", "show_parameters", "dictionary"),
])
def test_bad_show_parameters_are_refused(project, spec, key, message):
    make_notebook(project.notebooks_dir / "shown.ipynb", "import toolkit as tk" + PARAMETERS + "password: tk.Secret", BODY)
    (project.notebooks_dir / "shown.yml").write_text("title: Shown\n" + spec, encoding="utf-8")
    with pytest.raises(SpecError, match=re.escape(key)) as caught:
        read_inputs(find_report("shown", project.notebooks_dir))
    assert message in str(caught.value)


def test_demo_first_page_shows_labels_never_the_database_url(demo_run):
    run_dir, record = demo_run
    page = pdf_text(run_dir / "report.pdf", page=1)
    assert "Week" in page and "Sources" in page and "Status" in page
    assert "database_url" not in page and "sqlite:" not in page and "events.sqlite" not in page
