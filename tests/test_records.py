"""The records API and its encoding, in-process (the kernel path is covered by test_pipeline)."""

from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest

import toolkit as tk
from tests.conftest import pdf_text
from toolkit.errors import RecordError
from toolkit.notebook import analyst_api as api
from toolkit.notebook import records as rec
from toolkit.notebook.preview import render_preview


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch):
    monkeypatch.setattr(api, "_session", {})
    monkeypatch.delenv(api.RUN_ENV, raising=False)


def _notebook_with(*records):
    cells = []
    for record in records:
        cell = nbformat.v4.new_code_cell("")
        cell.outputs = [nbformat.v4.new_output("display_data", data={rec.MIME_TYPE: rec.encode(record)})]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def test_tables_keep_dtypes_and_index_through_the_notebook():
    df = pd.DataFrame(
        {
            "count": np.array([1, 2, 3], dtype="int64"),
            "maybe": pd.array([1, None, 3], dtype="Int64"),
            "when": pd.to_datetime(["2026-11-16", "2026-11-17", "2026-11-18"]),
            "kind": pd.Categorical(["a", "b", "a"]),
            "ratio": [0.5, 1.5, np.nan],
        },
        index=pd.Index(["x", "y", "z"], name="key"),
    )
    table = tk.table("t", df)
    back = rec.read_records(_notebook_with(table))["t"].frame
    pd.testing.assert_frame_equal(back, df)


def test_pivot_headers_are_flattened_readably():
    df = pd.DataFrame({"a": [1, 2], "b": ["u", "v"], "c": [3, 4]}).pivot_table(index="a", columns="b", values=["c"])
    back = rec.read_records(_notebook_with(tk.table("p", df)))["p"].frame
    assert list(back.columns) == ["c / u", "c / v"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tk.table("bad name", pd.DataFrame()), "record name 'bad name'"),
        (lambda: tk.table("", pd.DataFrame()), "record name ''"),
        (lambda: tk.table("t", [1, 2]), "expected a pandas DataFrame, got list"),
        (lambda: tk.figure("f", "not a figure"), "expected a matplotlib Figure"),
        (lambda: tk.metric("m", [1]), "expected a number or a string, got list"),
        (lambda: tk.metric("m", True), "expected a number or a string, got bool"),
        (lambda: tk.text("x", 5), "expected a string, got int"),
    ],
)
def test_bad_records_are_refused(call, message):
    with pytest.raises(RecordError, match=message):
        call()


def test_a_name_used_twice(monkeypatch):
    tk.metric("m", 1)
    with pytest.warns(UserWarning, match="record 'm' replaced"):  # interactive: re-running a cell
        tk.metric("m", 2)
    monkeypatch.setenv(api.RUN_ENV, "run-1")
    with pytest.raises(RecordError, match="'m' used twice"):  # under a run: an error
        tk.metric("m", 3)
    nb = _notebook_with(rec.Metric("m", 1), rec.Text("t", "x"), rec.Metric("m", 2))
    with pytest.raises(RecordError, match=r"record name 'm' used twice \(cells 0 and 2\)"):
        rec.read_records(nb)


@pytest.mark.parametrize(
    "data, message",
    [({"kind": "table", "name": "t"}, "malformed record"), ({"kind": "chart", "name": "c"}, "unknown record kind"),
     ({"kind": "metric", "name": "../x", "value": 1}, "record name")],
)
def test_malformed_records_in_a_notebook(data, message):
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={rec.MIME_TYPE: data})]
    with pytest.raises(RecordError, match=message):
        rec.read_records(nbformat.v4.new_notebook(cells=[cell]))


def test_metric_accepts_numpy_scalars():
    assert tk.metric("m", np.int64(7)).value == 7 and type(tk.metric("n", np.float32(0.5)).value) is float


def test_preview_renders_the_session_records(project, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tk.table("scores", pd.DataFrame({"score": [42, 7]}, index=pd.Index(["alpha", "beta"], name="team")))
    fig, ax = plt.subplots()
    ax.set_title("Preview chart label")
    tk.figure("chart", fig)
    tk.metric("best", 42, label="Best score")
    monkeypatch.chdir(project.notebooks_dir)  # found by walking up to templates/
    preview = render_preview(dict(api._session), display=False)
    pdf = project.root / "preview.pdf"
    pdf.write_bytes(preview.pdf)
    text = pdf_text(pdf)
    assert "alpha" in text and "Best score" in text and "Preview chart label" in text


def test_preview_is_a_no_op_under_a_run(monkeypatch):
    monkeypatch.setenv(api.RUN_ENV, "run-1")
    assert tk.preview() is None


@pytest.mark.parametrize("layout", ["constrained", "tight", None])
def test_figure_keeps_the_analysts_layout_engine(layout):
    """The PNG is saved in the SVG pass's layout, with the engine switched off for it; the figure
    gets its engine back, so a chart redrawn or saved again is laid out as the analyst asked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2), layout=layout)
    ax.plot([1, 3, 2])
    ax.set_title("Layout kept")
    engine = fig.get_layout_engine()
    record = tk.figure("layout_kept", fig)
    assert fig.get_layout_engine() is engine
    assert record.png.startswith(b"\x89PNG") and "Layout kept" in record.svg
