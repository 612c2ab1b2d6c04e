"""Whole runs with real kernels and real PDFs, including every way a run can fail."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import textwrap

import nbformat
import pytest

from tests.conftest import make_notebook, pdf_text
from toolkit.errors import CellTimeoutError, ExecutionError, KernelDiedError, RenderError, RunDirError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import find_report
from toolkit.notebook.records import read_records
from toolkit.runs.pipeline import render_run, run_report


def _run(project, name, given=None):
    return run_report(prepare(find_report(name, project.notebooks_dir), given or {}), project)


@pytest.fixture
def small_run(small_report):
    run_dir, record = _run(small_report, "small", {"n": 4, "mode": "slow"})
    return small_report, run_dir, record


def test_run_writes_evidence_and_a_pdf_with_the_records(small_run):
    project, run_dir, record = small_run
    assert run_dir.parent == project.runs_dir / "small"
    assert {p.name for p in run_dir.iterdir()} >= {"executed.ipynb", "report.html", "report.pdf", "run.json"}
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "succeeded" and saved["error"] is None
    assert saved["parameters"] == {"day": "2026-11-16", "n": 4, "mode": "slow"}
    assert set(saved["timings"]) == {"execute", "records", "html", "pdf"}
    assert saved["versions"]["papermill"] and saved["versions"]["weasyprint"]
    text = pdf_text(run_dir / "report.pdf")
    assert "Numbers table" in text and "row3" in text and "30" in text  # table rows and values
    assert "Total count" in text and "60" in text  # metric 0+10+20+30
    assert "Mode is slow, day type is date." in text  # injected as a real datetime.date
    assert "Chart title zebra" in text  # the chart is vector: its text is text
    assert "Page 1 of 1" in text


def test_records_keep_dtypes_and_index(small_run):
    _, run_dir, _ = small_run
    records = read_records(nbformat.read(str(run_dir / "executed.ipynb"), as_version=4))
    assert list(records) == ["numbers", "chart", "total", "note"]
    frame = records["numbers"].frame
    assert frame.index.name == "label" and list(frame.index) == ["row0", "row1", "row2", "row3"]
    assert str(frame["count"].dtype) == "int64" and str(frame["share"].dtype) == "float64"
    assert records["chart"].svg.lstrip().startswith("<?xml") and records["chart"].png[:4] == b"\x89PNG"


def test_render_again_without_executing(small_run):
    project, run_dir, record = small_run
    (project.templates_dir / "plain.html.j2").write_text(
        "<html><body><h1>Plain {{ report.title }}</h1>{{ records.numbers.html }}</body></html>"
    )
    executed_before = (run_dir / "executed.ipynb").read_bytes()
    again = render_run(run_dir, project, template="plain.html.j2")
    assert again.status == "succeeded" and again.spec["template"] == "plain.html.j2"
    assert (run_dir / "executed.ipynb").read_bytes() == executed_before
    text = pdf_text(run_dir / "report.pdf")
    assert "Plain Small" in text and "row3" in text and "Chart title zebra" not in text


def test_template_with_undefined_name_fails_clearly(small_run):
    project, run_dir, _ = small_run
    (project.templates_dir / "typo.html.j2").write_text("<p>{{ recrods.numbers }}</p>")
    with pytest.raises(RenderError, match="'recrods' is undefined"):
        render_run(run_dir, project, template="typo.html.j2")
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["stage"] == "render"


def test_fetcher_refuses_local_files_and_network(small_run, tmp_path):
    project, run_dir, _ = small_run
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    (project.templates_dir / "evil.html.j2").write_text(
        f"""<html><head><link rel="stylesheet" href="http://127.0.0.1:9/evil.css">
        <link rel="attachment" href="{secret.as_uri()}" title="leak"></head>
        <body><p>evil</p><img src="file:///etc/passwd"><img src="{{{{ static }}}}/../../../../etc/hostname">
        <img src="assets/chart.svg"></body></html>"""
    )
    record = render_run(run_dir, project, template="evil.html.j2")
    refused = record.refused_resources
    assert "http://127.0.0.1:9/evil.css" in refused
    assert "file:///etc/passwd" in refused
    assert secret.as_uri() in refused
    assert any(url.endswith("/etc/hostname") for url in refused)
    assert not any("chart.svg" in url for url in refused)  # the run's own assets are served
    from pypdf import PdfReader

    assert PdfReader(str(run_dir / "report.pdf")).attachments == {}
    assert b"TOP-SECRET-CONTENT" not in (run_dir / "report.pdf").read_bytes()


def _failing_project(project, body, **spec):
    make_notebook(project.notebooks_dir / "bad.ipynb", "n: int = 1", "import toolkit as tk", body, "tk.metric('after', 1)")
    if spec:
        import yaml

        (project.notebooks_dir / "bad.yml").write_text(yaml.safe_dump(spec))
    return project


def _assert_failed(project, error_type, *, cell_index, ename, evalue_part):
    assert evalue_part, "every substring is in the empty string: name a part of the error's value"
    with pytest.raises(error_type) as info:
        _run(project, "bad")
    (run_dir,) = (project.runs_dir / "bad").iterdir()
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "failed"
    assert saved["error"]["stage"] == "execute"
    assert saved["error"]["cell_index"] == cell_index
    assert saved["error"]["ename"] == ename
    assert evalue_part in (saved["error"]["evalue"] or "")
    assert (run_dir / "executed.ipynb").exists()  # the partial notebook is kept
    assert not (run_dir / "report.pdf").exists() and not (run_dir / "report.html").exists()
    return info.value, run_dir


def test_cell_that_raises(project):
    _failing_project(project, "raise ValueError('no rows for week 7')")
    error, run_dir = _assert_failed(project, ExecutionError, cell_index=2, ename="ValueError", evalue_part="no rows for week 7")
    assert str(error) == "cell 2 raised ValueError: no rows for week 7"  # index in the analyst's notebook
    cells = nbformat.read(str(run_dir / "executed.ipynb"), as_version=4).cells
    failing = next(c for c in cells if c.source.startswith("raise ValueError"))
    assert failing.outputs[0]["ename"] == "ValueError"
    assert next(c for c in cells if c.source.startswith("tk.metric('after'")).outputs == []  # later cells did not run


def test_cell_past_its_timeout(project):
    _failing_project(project, "import time; time.sleep(60)", timeouts={"cell": 6})
    _assert_failed(project, CellTimeoutError, cell_index=2, ename="CellTimeoutError", evalue_part="6 s")


def test_kernel_that_dies(project):
    _failing_project(project, "import os; os._exit(3)")
    error, _ = _assert_failed(project, KernelDiedError, cell_index=2, ename="DeadKernelError", evalue_part="Kernel died")
    assert str(error) == "the kernel died while running cell 2"


def test_record_name_used_twice(project):
    _failing_project(project, "tk.metric('twice', 1)\ntk.metric('twice', 2)")
    _assert_failed(project, ExecutionError, cell_index=2, ename="RecordError", evalue_part="'twice' used twice")


def test_render_refuses_a_run_that_did_not_execute(project):
    _failing_project(project, "raise RuntimeError('boom')")
    with pytest.raises(ExecutionError):
        _run(project, "bad")
    (run_dir,) = (project.runs_dir / "bad").iterdir()
    with pytest.raises(RunDirError, match="did not finish executing"):
        render_run(run_dir, project)


def test_each_run_gets_its_own_folder(small_report):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    first, _ = _run(small_report, "small")
    second, _ = _run(small_report, "small")
    after = dt.datetime.now(dt.timezone.utc)
    assert first != second and first.parent == second.parent
    for folder in (first, second):  # named by its start in UTC to the second, then 32 random bits
        stamp, suffix = folder.name.split("-")
        started = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        assert before <= started <= after, (folder.name, before, after)
        assert re.fullmatch(r"[0-9a-f]{8}", suffix), folder.name
    assert first.name.split("-")[0] <= second.name.split("-")[0]  # sortable: the later run does not sort first


def test_a_run_reads_its_notebook_once(small_report):
    """The CLI reads the notebook once (prepare); the kernel gets the prepared copy, not the file again."""
    notebook = small_report.notebooks_dir / "small.ipynb"
    code = textwrap.dedent(f"""
        import sys
        opened = []
        sys.addaudithook(lambda event, args: opened.append(args[0]) if event == "open" and str(args[0]) == {str(notebook)!r} else None)
        from toolkit.cli import main
        try:
            main(["--project", {str(small_report.root)!r}, "run", "small", "-p", "n=4"], standalone_mode=False)
        finally:
            print("OPENED", len(opened))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "OPENED 1" in result.stdout, result.stdout + result.stderr
