"""What the analyst sees in the notebook: one-line reprs, and ``tk.preview()`` in a real kernel.

The kernel test runs a notebook the way JupyterLab's kernel sees it (not under nbpress: no
``NBPRESS_RUN_ID``), with ``JPY_SESSION_NAME`` naming the notebook as the Jupyter server does
(no server here: the fallback of :mod:`toolkit.notebook.notebook_path`). The JupyterLab session
itself, renaming included, is tests/test_lab_session.py.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

import toolkit as tk
from tests.conftest import make_notebook, pdf_text
from toolkit.notebook import analyst_api as api
from toolkit.notebook import records as rec
from toolkit.notebook.notebook_path import current_notebook


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch):
    monkeypatch.setattr(api, "_session", {})
    monkeypatch.delenv(api.RUN_ENV, raising=False)


def test_records_have_one_line_reprs_without_bytes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(np.arange(35).reshape(7, 5), columns=list("abcde"), index=pd.Index(range(7), name="k"))
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    shown = {
        "table": repr(tk.table("summary", frame)),
        "series": repr(tk.table("one", pd.Series([1.5], name="x"))),
        "figure": repr(tk.figure("trend", fig)),
        "metric": repr(tk.metric("rows", 1234, label="Events")),
        "long metric": repr(tk.metric("who", "a long\nlabel " * 20)),
        "text": repr(tk.text("note", "**Markdown**\n\nsecond paragraph")),
    }
    assert shown["table"] == "<table 'summary': 7 rows x 5 columns>"  # the stored index is not a column
    assert shown["series"] == "<table 'one': 1 row x 1 column>"
    assert shown["metric"] == "<metric 'rows': 1234>"
    assert shown["figure"].startswith("<figure 'trend': SVG ") and shown["text"] == "<text 'note': 30 characters>"
    for what, line in shown.items():
        assert "\n" not in line and len(line) < 90 and "b'" not in line and "PAR1" not in line, what
    # The records read back from a notebook are the same objects, with the same reprs.
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={rec.MIME_TYPE: rec.encode(api._session["summary"])})]
    assert repr(rec.read_records(nbformat.v4.new_notebook(cells=[cell]))["summary"]) == shown["table"]


def test_importing_the_toolkit_in_a_notebook_does_not_load_nbformat():
    # nbformat pulls in jsonschema's format checkers: ~2 s where jupyterlab is installed.
    code = "import sys, toolkit; print('nbformat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_current_notebook_outside_a_kernel_falls_back_to_the_session_name(tmp_path):
    assert current_notebook({}) is None
    assert current_notebook({"__session__": str(tmp_path / "a.ipynb")}) == tmp_path / "a.ipynb"
    assert current_notebook({"__session__": "console-1"}) is None  # a console, not a notebook


def test_preview_in_a_kernel_shows_only_the_pdf_and_leaves_no_files(project, tmp_path):
    notebook = make_notebook(
        project.notebooks_dir / "regional_sales.ipynb",
        'region: str = "North"',
        """
        import pandas as pd, matplotlib.pyplot as plt, toolkit as tk
        tk.table("summary", pd.DataFrame({"sales": [120, 80]}, index=pd.Index(["north", "south"], name="region")))
        """,
        "fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 3, 2]); ax.set_title('Sales curve'); plt.close(fig)\ntk.figure('trend', fig)",
        'tk.metric("total", 200, label="Total sales")',
        'tk.text("note", "Sold in **" + region + "**.")',
        "tk.preview()",
    )
    (project.notebooks_dir / "regional_sales.yml").write_text("title: Regional Sales Review\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"JPY_SESSION_NAME": str(notebook), "TMPDIR": str(scratch), "NBPRESS_RUN_ID": ""}
    nb = nbformat.read(str(notebook), as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)

    shown = [(i, o) for i, cell in enumerate(nb.cells) for o in cell.outputs]
    for index, output in shown:
        text = str(output.get("data", {}).get("text/plain", "")) + str(output.get("text", ""))
        assert "PAR1" not in text and "b'" not in text and "PosixPath(" not in text and "Table(name=" not in text, (index, text)
    results = [o.data["text/plain"] for _, o in shown if o.output_type == "execute_result"]
    assert len(results) == 4 and results[1].startswith("<figure 'trend': SVG ")  # one line each
    assert [results[0], results[2], results[3]] == ["<table 'summary': 2 rows x 1 column>", "<metric 'total': 200>",
                                                    "<text 'note': 18 characters>"]
    preview = nb.cells[-1].outputs
    assert [o.output_type for o in preview] == ["display_data"], preview  # the PDF and nothing else
    pdf = tmp_path / "preview.pdf"
    pdf.write_bytes(base64.b64decode(preview[0].data["application/pdf"]))
    text = pdf_text(pdf)
    # The spec beside the notebook (its title), the current parameter value and every record.
    assert "Regional Sales Review" in text and "North" in text and "Total sales" in text and "Sales curve" in text
    assert list(scratch.iterdir()) == []  # the preview's temporary folder is gone
