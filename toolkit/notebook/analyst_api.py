"""The analyst's API, used inside notebooks: ``import toolkit as tk; tk.table("summary", df)``.

Each call displays the object normally and attaches a record (see :mod:`toolkit.notebook.records`).
It returns the record, whose repr is one line (``<table 'summary': 7 rows x 5 columns>``): a
cell ending in ``tk.table(...)`` shows the table and that line, never the recorded bytes.
Under an nbpress run (``NBPRESS_RUN_ID`` is set in the kernel's environment) a record name used
twice is an error; interactively, re-running a cell replaces the earlier record.
"""

from __future__ import annotations

import html
import io
import os
import sys
import warnings
from numbers import Real
from typing import Any

from ..errors import RecordError
from . import chart_fonts
from . import records as rec
from .run_env import RUN_ENV

# pandas, matplotlib, IPython's display and the preview's renderer are imported inside the calls
# that use them: `import toolkit` stays cheap (tests/test_packaging.py checks it).

_session: dict[str, rec.Record] = {}


def _publish(record: rec.Record, bundle: dict[str, Any]) -> rec.Record:
    if record.name in _session:
        if os.environ.get(RUN_ENV):
            raise RecordError(f"record name {record.name!r} used twice")
        warnings.warn(f"record {record.name!r} replaced", stacklevel=3)
    _session[record.name] = record
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:  # in a kernel (or IPython)
        from IPython.display import display  # only in a kernel

        display({**bundle, rec.MIME_TYPE: rec.encode(record)}, raw=True)
    return record


def table(name: str, df: Any, caption: str | None = None, formats: dict[str, str] | None = None) -> rec.Table:
    """Record a pandas DataFrame (or Series) as a table; dtypes and index are kept.

    Numbers show in the PDF as the notebook shows them; ``formats`` sets a column's own, e.g.
    ``{"share": "{:.1%}", "revenue": "{:,.0f} €"}`` (the report's spec may override it).
    """
    import pandas as pd  # on first use

    from ..render.cells import check_format

    rec.check_name(name)
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise RecordError(f"table {name!r}: expected a pandas DataFrame, got {type(df).__name__}")
    buffer = io.BytesIO()
    # Parquet needs string column names; keep MultiIndex/pivot headers readable.
    frame = df.copy(deep=False)
    frame.columns = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns]
    checked = []
    for column, text in (formats or {}).items():
        if str(column) not in frame.columns:
            raise RecordError(f"table {name!r}: formats name no column {column!r} (columns: {', '.join(frame.columns)})")
        try:
            checked.append((str(column), check_format(str(text))))
        except ValueError as exc:
            raise RecordError(f"table {name!r} column {column!r}: {exc}") from None
    frame.to_parquet(buffer, index=True)
    record = rec.Table(name, buffer.getvalue(), caption, tuple(checked))
    return _publish(record, {"text/html": df.to_html(max_rows=50), "text/plain": repr(df)})


def figure(name: str, fig: Any, caption: str | None = None, alt: str | None = None) -> rec.Figure:
    """Record a matplotlib figure: SVG for the PDF (text kept as text, or as shaped paths for
    right-to-left scripts), PNG as a fallback. Its texts get the fallback fonts of every script.
    The figure is shown once (its PNG) and closed in pyplot, so the notebook does not show it twice.

    ``alt`` is what a screen reader says instead of the picture (default: the caption): say
    what the figure shows, e.g. "Events per day rise from 1,200 on Monday to 2,900 on Friday".
    """
    import matplotlib  # on first use

    rec.check_name(name)
    if not hasattr(fig, "savefig"):
        raise RecordError(f"figure {name!r}: expected a matplotlib Figure, got {type(fig).__name__}")
    if alt is not None and (not isinstance(alt, str) or not alt.strip()):
        raise RecordError(f"figure {name!r}: alt must be a non-empty string, got {alt!r}")
    svg, png = io.BytesIO(), io.BytesIO()
    with chart_fonts.recording(fig) as missing:
        for fonttype in ("none", "path"):  # text stays text (searchable in the PDF) unless it needs shaping
            svg.seek(0), svg.truncate()
            with matplotlib.rc_context({"svg.fonttype": fonttype, "svg.hashsalt": name}):
                fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})  # reproducible
            if not chart_fonts.needs_shaping(svg.getvalue().decode("utf-8")):
                break
        _save_png_in_layout(fig, png)
    record = rec.Figure(name, svg.getvalue().decode("utf-8"), png.getvalue(), caption, tuple(missing), alt.strip() if alt else None)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # the inline backend would show a pyplot figure again at the cell's end
        pyplot.close(fig)
    return _publish(record, {"image/png": png.getvalue(), "text/plain": f"<figure {name}>"})


def _save_png_in_layout(fig: Any, png: io.BytesIO) -> None:
    """The PNG in the layout the SVG pass just made: a layout engine (constrained, tight) would
    lay the figure out again for the PNG (~25 ms of the ~200 ms a chart took). The analyst's
    engine is back on the figure afterwards."""
    engine = fig.get_layout_engine()
    if engine is None:
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
        return
    fig.set_layout_engine("none")
    try:
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    finally:
        fig.set_layout_engine(engine)


def metric(name: str, value: Any, label: str | None = None) -> rec.Metric:
    """Record a key figure (a number or a short string) with an optional label."""
    rec.check_name(name)
    if hasattr(value, "item"):  # numpy scalars -> Python numbers
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (Real, str)):
        raise RecordError(f"metric {name!r}: expected a number or a string, got {type(value).__name__}")
    record = rec.Metric(name, value, label)
    shown = f"{label or name}: {value}"
    return _publish(record, {"text/plain": shown, "text/html": f"<p><b>{html.escape(label or name)}</b>: {html.escape(str(value))}</p>"})


def text(name: str, markdown: str) -> rec.Text:
    """Record a paragraph of Markdown (raw HTML in it is not rendered)."""
    rec.check_name(name)
    if not isinstance(markdown, str):
        raise RecordError(f"text {name!r}: expected a string, got {type(markdown).__name__}")
    record = rec.Text(name, markdown)
    return _publish(record, {"text/markdown": markdown, "text/plain": markdown})


def preview(report: str | None = None, *, project: str | os.PathLike | None = None) -> None:
    """Render the records made so far with the report's template and show the PDF inline.

    ``report``: a spec name in ``notebooks/`` or a path to a spec or notebook (default: the spec
    beside this notebook, found by the notebook's current name). ``project``: the folder holding
    ``templates/`` (default: the nearest one at or above the notebook). Returns None, so a cell
    ending in ``tk.preview()`` shows the PDF and nothing else. Under an nbpress run this does
    nothing: the run renders the report itself.
    """
    if os.environ.get(RUN_ENV):
        return None
    from .preview import render_preview  # Jinja, pydantic, WeasyPrint: only when previewing

    render_preview(dict(_session), report, project)
    return None
