"""Bad input, table-driven, where it enters the toolkit: CLI arguments and parameter values,
report spec files, notebooks and templates.

Each row is data: the input, the clear error expected (exit status and one line on stderr, or the
error in run.json) and what must not have happened. Rows refused before a run leave no run
folder at all; rows that fail during a run leave a run folder whose run.json says ``failed`` with
the stage, and keep the partial executed notebook; a template that fails leaves the earlier PDF
byte for byte. The real ``nbpress`` console script and real kernels run every row.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT, cli, make_notebook
from toolkit.errors import RenderError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import find_report
from toolkit.project import Project
from toolkit.runs.pipeline import render_run, run_report

SMALL_PARAMS = """
import datetime
from typing import Literal
day: datetime.date = datetime.date(2026, 11, 16)
n: int = 3
mode: Literal["fast", "slow"] = "fast"
"""
SMALL_BODY = "import toolkit as tk\ntk.metric('total', n * 10, label='Total')\ntk.text('note', f'mode {mode}')"


@dataclass(frozen=True)
class Row:
    case: str
    args: tuple[str, ...]  # after `nbpress`; {nb} is the notebooks folder
    exit_code: int
    message: str  # must appear in the one stderr line
    proves: str
    files: dict[str, str] = field(default_factory=dict)  # extra files under notebooks/ (name -> text)
    run_failed_stage: str | None = None  # a run folder with run.json status failed at this stage
    one_line: bool = True


def _project(tmp_path: Path) -> Project:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    make_notebook(tmp_path / "notebooks" / "small.ipynb", SMALL_PARAMS, SMALL_BODY)
    return Project(tmp_path)


def _check_row(project: Project, row: Row, proof, category: str) -> None:
    proof.case(category, row.case, row.proves)
    for name, text in row.files.items():
        (project.notebooks_dir / name).write_text(text, encoding="utf-8")
    args = [a.replace("{nb}", str(project.notebooks_dir)) for a in row.args]
    result = cli(*args, cwd=project.root)
    assert result.returncode == row.exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert row.message in result.stderr, result.stderr
    if row.one_line:
        assert len(lines) == 1 and lines[0].startswith("nbpress: error: "), result.stderr
    elif row.exit_code == 1:  # nbclient logs one line of its own before ours
        assert lines[-1].startswith("nbpress: error: ") and len(lines) <= 2, result.stderr
    assert "Traceback" not in result.stderr
    runs = sorted(project.runs_dir.glob("*/*")) if project.runs_dir.exists() else []
    if row.run_failed_stage is None:
        assert runs == [], "refused input must not leave a run folder"
        return
    (run_dir,) = runs
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["stage"] == row.run_failed_stage, saved["error"]
    assert not (run_dir / "report.pdf").exists()  # no PDF from a failed run
    assert not list(run_dir.rglob("*.part"))  # and nothing half-written


# --- CLI arguments and parameter values -----------------------------------------------------------

PARAM_ROWS = [
    Row("-p without '='", ("run", "small", "-p", "n"), 2, "expected name=value", "a malformed assignment is refused before any kernel"),
    Row("-p with an empty int", ("run", "small", "-p", "n="), 2, "parameter 'n'", "an empty value is not silently 0"),
    Row("-p float for int", ("run", "small", "-p", "n=2.5"), 2, "parameter 'n': got '2.5', expected int", "no silent truncation of numbers"),
    Row("-p impossible date", ("run", "small", "-p", "day=2026-02-30"), 2, "parameter 'day'", "calendar-invalid dates are refused"),
    Row("-p literal in the wrong case", ("run", "small", "-p", "mode=FAST"), 2, "parameter 'mode'", "choices are exact"),
    Row("-p unknown parameter", ("run", "small", "-p", "n=1", "-p", "colour=red"), 2, "unknown parameter", "typos in names are refused, naming the known ones"),
    Row("-p very long value", ("run", "small", "-p", "mode=" + "x" * 20000), 2, "parameter 'mode'", "a 20,000-character value gets one clear line"),
    Row("-p hexadecimal for int", ("run", "small", "-p", "n=0x10"), 2, "parameter 'n'", "only decimal integers are read as int"),
    Row("-f file that is not YAML", ("run", "small", "-f", "{nb}/values.yml"), 2, "cannot read parameters", "a broken parameter file is refused",
        files={"values.yml": "n: [unclosed"}),
    Row("-f file holding a list", ("run", "small", "-f", "{nb}/values.yml"), 2, "expected a mapping", "the parameter file must map names to values",
        files={"values.yml": "- 1\n- 2\n"}),
    Row("-f file with a wrong type", ("run", "small", "-f", "{nb}/values.yml"), 2, "parameter 'n'", "file values are type-checked like -p values",
        files={"values.yml": "n: three\n"}),
    Row("report name with a path", ("run", "../../etc/passwd"), 2, "no report named", "a report name cannot walk out of notebooks/", one_line=True),
    Row("--workers 0", ("run", "small", "--workers", "0"), 2, "Invalid value", "option ranges are checked by the CLI", one_line=False),
]


@pytest.mark.parametrize("row", PARAM_ROWS, ids=[r.case for r in PARAM_ROWS])
def test_cli_arguments_and_parameters(tmp_path, row, proof):
    _check_row(_project(tmp_path), row, proof, "CLI arguments and parameter values")


# --- report spec files ---------------------------------------------------------------------------

SPEC_ROWS = [
    Row("spec that is not YAML", ("run", "small"), 2, "not valid YAML", "a broken spec stops the run, naming the file",
        files={"small.yml": "title: [unclosed"}),
    Row("spec with an unknown key", ("run", "small"), 2, "colour", "typos in spec keys are refused, naming the key",
        files={"small.yml": "title: T\ncolour: red\n"}),
    Row("spec with a wrong type", ("run", "small"), 2, "timeouts.cell", "spec values are type-checked, naming the key",
        files={"small.yml": "timeouts:\n  cell: soon\n"}),
    Row("spec default of the wrong type", ("run", "small"), 2, "parameter 'n'", "spec parameter defaults are checked against the notebook",
        files={"small.yml": "parameters:\n  n: three\n"}),
    Row("spec template outside templates/", ("run", "small"), 2, "inside templates/", "a spec cannot point the renderer at other files",
        files={"small.yml": "template: ../../../etc/passwd\n"}),
    Row("spec CSS injection in page size", ("run", "small"), 2, "page.size", "page settings cannot smuggle CSS",
        files={"small.yml": "page:\n  size: 'A4; } body { display: none'\n"}),
]


@pytest.mark.parametrize("row", SPEC_ROWS, ids=[r.case for r in SPEC_ROWS])
def test_report_spec_files(tmp_path, row, proof):
    _check_row(_project(tmp_path), row, proof, "report spec files")


# --- notebooks -------------------------------------------------------------------------------------

MEMORY_CELL = """
import resource
size = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 256 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
hog = bytearray(1024 * 2**20)
"""


def _notebook(params: str | None, *cells: str, kernelspec: str | None = "python3") -> str:
    nb = nbformat.v4.new_notebook()
    if kernelspec:
        nb.metadata["kernelspec"] = {"name": kernelspec, "display_name": kernelspec, "language": "python"}
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(c) for c in cells)
    return nbformat.writes(nb)


NOTEBOOK_ROWS = [
    Row("notebook that is not JSON", ("run", "bad"), 2, "not a valid notebook", "a corrupt notebook is refused before a kernel starts",
        files={"bad.ipynb": "{not json"}),
    Row("notebook of 0 bytes", ("run", "bad"), 2, "not a valid notebook", "an empty file is refused before a kernel starts",
        files={"bad.ipynb": ""}),
    Row("a value for a notebook without a parameters cell", ("run", "bad", "-p", "n=1"), 2, "no cell tagged 'parameters'; add the tag",
        "a notebook without the tag runs as it is; a value given for it says how to add the tag",
        files={"bad.ipynb": _notebook(None, "x = 1")}),
    Row("notebook without a kernel spec", ("run", "bad"), 2, "no usable kernel", "a missing kernelspec is one clear line; run.json says failed",
        files={"bad.ipynb": _notebook("n: int = 1", "x = 1", kernelspec=None)}, run_failed_stage="execute"),
    Row("notebook naming an unknown kernel", ("run", "bad"), 2, "No such kernel named cobol9", "an unknown kernel is one clear line; run.json says failed",
        files={"bad.ipynb": _notebook("n: int = 1", "x = 1", kernelspec="cobol9")}, run_failed_stage="execute"),
    Row("a cell that never ends", ("run", "bad"), 1, "ran past its timeout of 2 s", "a hung cell is stopped at the spec's timeout; run.json says failed",
        files={"bad.ipynb": _notebook("n: int = 1", "while True: pass"), "bad.yml": "timeouts:\n  cell: 2\n"}, run_failed_stage="execute",
        one_line=False),
    Row("a cell that kills the kernel", ("run", "bad"), 1, "the kernel died while running cell 1", "a dead kernel fails the run clearly; run.json says failed",
        files={"bad.ipynb": _notebook("n: int = 1", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")}, run_failed_stage="execute",
        one_line=False),
    Row("a cell that fills memory up to a limit", ("run", "bad"), 1, "raised MemoryError", "memory exhaustion under RLIMIT_AS fails the run, not the machine",
        files={"bad.ipynb": _notebook("n: int = 1", MEMORY_CELL)}, run_failed_stage="execute"),
]


@pytest.mark.parametrize("row", NOTEBOOK_ROWS, ids=[r.case for r in NOTEBOOK_ROWS])
def test_notebooks(tmp_path, row, proof):
    project = _project(tmp_path)
    _check_row(project, row, proof, "notebooks")
    if row.run_failed_stage == "execute" and row.exit_code == 1:
        (run_dir,) = project.runs_dir.glob("*/*")
        executed = nbformat.read(str(run_dir / "executed.ipynb"), as_version=4)  # the partial notebook is kept
        assert any(c.get("execution_count") for c in executed.cells if c.cell_type == "code")


# --- templates --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One run that succeeded; each template row renders it again."""
    project = _project(tmp_path_factory.mktemp("templates"))
    run_dir, _ = run_report(prepare(find_report("small", project.notebooks_dir), {}), project)
    return project, run_dir


@dataclass(frozen=True)
class TemplateRow:
    case: str
    template: str
    proves: str
    error: str | None = None  # the RenderError expected; None: renders, with these refused
    refused: tuple[str, ...] = ()
    error_type: type = RenderError


TEMPLATE_ROWS = [
    TemplateRow("template syntax error", "<p>{% if %}</p>", "a broken template fails the render clearly; the earlier PDF stays", error="line 1"),
    TemplateRow("template undefined name", "<p>{{ recrods.total }}</p>", "a typo in a template is an error, not an empty space", error="'recrods' is undefined"),
    TemplateRow("template reading file:///etc/passwd", '<img src="file:///etc/passwd"><p>x</p>', "local files never reach the PDF",
                refused=("file:///etc/passwd",)),
    TemplateRow("template loading http:// resources", '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"><img src="https://example.invalid/a.png"><p>x</p>',
                "the renderer makes no network requests", refused=("http://127.0.0.1:9/x.css", "https://example.invalid/a.png")),
    TemplateRow("template name outside templates/", "", "a template name cannot walk out of templates/", error="inside templates/", error_type=Exception),
]


@pytest.mark.parametrize("row", TEMPLATE_ROWS, ids=[r.case for r in TEMPLATE_ROWS])
def test_templates(finished_run, row, proof):
    proof.case("templates", row.case, row.proves)
    project, run_dir = finished_run
    pdf_before = (run_dir / "report.pdf").read_bytes()
    name = f"row-{abs(hash(row.case))}.html.j2"
    if row.template:
        (project.templates_dir / name).write_text(row.template, encoding="utf-8")
    else:
        name = "../../etc/passwd"
    if row.error is not None:
        with pytest.raises(row.error_type, match=row.error if row.error_type is RenderError else None) as info:
            render_run(run_dir, project, template=name)
        assert row.error in str(info.value)
        if row.error_type is RenderError:
            saved = json.loads((run_dir / "run.json").read_text())
            assert saved["status"] == "failed" and saved["error"]["stage"] == "render"
        assert (run_dir / "report.pdf").read_bytes() == pdf_before  # the earlier PDF, untouched
    else:
        record = render_run(run_dir, project, template=name)
        assert set(row.refused) <= set(record.refused_resources), record.refused_resources
        pdf = (run_dir / "report.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:] and b"root:x:0:0" not in pdf
    assert not list(run_dir.rglob("*.part"))
