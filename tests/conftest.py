"""Shared fixtures: projects in tmp folders, notebooks built in code, one real demo run.

Everything here is real: papermill kernels, WeasyPrint PDFs, SQLite files, pdftotext.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import find_report
from toolkit.project import Project
from toolkit.runs.pipeline import run_report

ROOT = Path(__file__).resolve().parents[1]
DEMO_END = dt.date(2026, 11, 22)  # a Sunday: tests pin the data's dates


def make_notebook(path: Path, parameters: str | None, *cells: str) -> Path:
    """Write a notebook whose first cell (tagged ``parameters``) holds ``parameters``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(textwrap.dedent(parameters).strip())
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def pdf_text(path: Path, *, layout: bool = False, page: int | None = None) -> str:
    """The PDF's text (pdftotext); only page ``page`` (1-based) when given."""
    pages = ["-f", str(page), "-l", str(page)] if page is not None else []
    args = ["pdftotext", "-enc", "UTF-8", *pages] + (["-layout"] if layout else []) + [str(path), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def cli(*args: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess:
    """Run the real ``nbpress`` console script."""
    exe = Path(sys.executable).with_name("nbpress")
    result = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"nbpress {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project using the repository's templates (copied: tests may add their own)."""
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "notebooks").mkdir()
    return Project(tmp_path)


@pytest.fixture
def small_report(project: Project) -> Project:
    """A quick notebook that records one of each kind."""
    make_notebook(
        project.notebooks_dir / "small.ipynb",
        """
        import datetime
        from typing import Literal
        day: datetime.date = datetime.date(2026, 11, 16)  # the day
        n: int = 3
        mode: Literal["fast", "slow"] = "fast"
        """,
        """
        import pandas as pd, matplotlib.pyplot as plt, toolkit as tk
        df = pd.DataFrame({"count": [10 * i for i in range(n)], "share": [0.5] * n},
                          index=pd.Index([f"row{i}" for i in range(n)], name="label"))
        tk.table("numbers", df, caption="Numbers table")
        fig, ax = plt.subplots(figsize=(4, 2)); ax.plot(range(n)); ax.set_title("Chart title zebra")
        tk.figure("chart", fig, caption="A chart")
        tk.metric("total", int(df["count"].sum()), label="Total count")
        tk.text("note", f"Mode is **{mode}**, day type is {type(day).__name__}.")
        """,
    )
    return project


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    from toolkit.demo.demo_data import generate

    path = tmp_path_factory.mktemp("demo") / "events.sqlite"
    generate(path, end=DEMO_END)
    return path


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("demo-project")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return Project(root)


@pytest.fixture(scope="session")
def demo_run(demo_project: Project, demo_db: Path):
    """One executed Weekly Statistics run shared by the tests that read its PDF."""
    spec = find_report("weekly_statistics", demo_project.notebooks_dir)
    week = dt.date(2026, 11, 16)
    prepared = prepare(spec, {"week": week, "database_url": f"sqlite:///{demo_db}"})
    run_dir, record = run_report(prepared, demo_project)
    return run_dir, record


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session (see tests/postgres.py)."""
    import os

    from tests.postgres import find_bin_dir, postgres_server

    if find_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; `make test` installs it")
        pytest.skip("PostgreSQL server binaries not installed (Debian package 'postgresql'); `make test` installs them")
    with postgres_server() as url:
        yield url


# The proof suite's recorder (tests/proof/recorder.py): the ``proof`` fixture and the hooks
# that gather what each proof case proves into .proof/results.json.
from tests.proof.recorder import proof, pytest_runtest_logreport, pytest_sessionfinish  # noqa: E402,F401
