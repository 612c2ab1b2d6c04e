"""The real ``nbpress`` console script: one clear line on errors and meaningful exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import cli, make_notebook
from tests.helpers import run_in_pty


def test_help_lists_the_commands(tmp_path):
    result = cli("--help", cwd=tmp_path, check=True)
    for command in ("params", "run", "render", "inspect", "demo-data", "demo"):
        assert command in result.stdout


def test_python_m_toolkit_cli_knows_every_command(tmp_path):
    # `worker` and `runs` live in their own modules; they are registered before the __main__ guard.
    result = subprocess.run([sys.executable, "-m", "toolkit.cli", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=True)
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert {"run", "worker", "runs", "portal"} <= listed


def test_params_prints_the_schema(small_report):
    result = cli("params", "small", cwd=small_report.root, check=True)
    assert "day" in result.stdout and "date" in result.stdout and "2026-11-16" in result.stdout
    assert "the day" in result.stdout  # help from the trailing comment
    assert "fast, slow" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "small", "-p", "n=three"], "nbpress: error: parameter 'n': got 'three', expected int"),
        (["run", "small", "-p", "mode=medium"], "parameter 'mode': got 'medium', expected one of 'fast', 'slow'"),
        (["run", "small", "-p", "colour=red"], "parameter 'colour': unknown parameter (known: day, n, mode)"),
        (["run", "small", "-p", "day=yesterday"], "parameter 'day': got 'yesterday', expected date"),
        (["run", "missing"], "no report named 'missing'"),
        (["params", "broken.ipynb"], "not a valid notebook"),
        (["run", "noparams", "-p", "x=2"], "cannot set 'x': no cell tagged 'parameters'; add the tag 'parameters'"),
    ],
)
def test_bad_input_is_refused_before_any_kernel_starts(small_report, args, message):
    (small_report.notebooks_dir / "broken.ipynb").write_text("{not json", encoding="utf-8")
    make_notebook(small_report.notebooks_dir / "noparams.ipynb", None, "x = 1")
    args = [a.replace("broken.ipynb", str(small_report.notebooks_dir / "broken.ipynb")) for a in args]
    result = cli(*args, cwd=small_report.root)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not small_report.runs_dir.exists()  # refused before a run folder or kernel


def test_param_file_and_failed_run_exit_status(small_report, tmp_path):
    values = tmp_path / "values.yml"
    values.write_text("n: 2\nday: 2026-01-05\n", encoding="utf-8")
    ok = cli("run", "small", "-f", str(values), cwd=small_report.root, check=True)
    assert ok.stderr == ""  # not a terminal: no progress output in logs
    pdf = ok.stdout.split()[0]
    info = json.loads(cli("inspect", pdf, "--json", cwd=small_report.root, check=True).stdout)
    assert info["title"] == "Small" and info["pages"] == 1
    assert info["provenance"]["parameters"] == {"day": "2026-01-05", "n": 2, "mode": "fast"}
    assert info["provenance"]["report"] == "small" and len(info["provenance"]["notebook_sha256"]) == 64

    make_notebook(small_report.notebooks_dir / "boom.ipynb", "x: int = 1", "raise KeyError('missing column')")
    failed = cli("run", "boom", cwd=small_report.root)
    assert failed.returncode == 1
    [run_dir] = (small_report.runs_dir / "boom").iterdir()
    assert failed.stderr.strip() == (f"nbpress: error: cell 1 raised KeyError: 'missing column' (run folder: {run_dir};"
                                     " the executed notebook is kept there)")
    assert (run_dir / "executed.ipynb").is_file()
    listed = cli("runs", "--failed", cwd=small_report.root, check=True).stdout.splitlines()  # not the run that succeeded
    assert len(listed) == 2 and listed[1].split("\t")[1:3] == ["boom", "failed"]
    assert len(cli("runs", cwd=small_report.root, check=True).stdout.splitlines()) == 3


def test_progress_shows_stage_and_cells_on_a_terminal(small_report):
    import os
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("nbpress")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    status, output = run_in_pty([str(exe), "run", "small"], cwd=small_report.root, env=env)  # stderr is a terminal
    assert status == 0
    import re

    assert "execute" in output and re.search(r"cell \d/3", output)  # stage and cell progress
    assert "report.pdf" in output
