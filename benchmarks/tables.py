"""The long-table workload: a deterministic mixed-type table, its report HTML, and PDF checks.

The same records give two HTML files: ``marked`` as ``nbpress run`` renders it (the table is
marked for the chunked layout) and ``plain`` with the ordinary table markup and style, which
the raw ``weasyprint`` CLI gets. Checks read the PDF back with ``pdftotext -layout``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from pathlib import Path

__all__ = ["frame", "write_html", "check_pdf"]

COLUMNS = ["day", "source", "category", "events", "errors", "duration_ms", "share", "user"]
_HEADER = re.compile(r"\brow\s+day\s+source\s+category\s+events\s+errors\s+duration_ms\s+share\s+user\b")
_ROW = re.compile(r"^\s*(\d+)\s+\d{4}-\d{2}-\d{2}\s", re.M)


def frame(rows: int, seed: int = 7):
    """``rows`` x 8 columns: a date, short strings, integers, floats; the index is the row number."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = dt.date(2026, 1, 1)
    return pd.DataFrame(
        {
            "day": [start + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, rows)],
            "source": rng.choice(["web", "api", "batch", "mobile", "partner"], rows),
            "category": rng.choice(["signup", "login", "search", "purchase", "refund", "support", "export"], rows),
            "events": rng.integers(0, 2_000_000, rows),
            "errors": rng.integers(0, 5_000, rows),
            "duration_ms": rng.lognormal(4, 1, rows).round(2),
            "share": rng.random(rows),
            "user": [f"user-{int(u):06d}" for u in rng.integers(0, 1_000_000, rows)],
        },
        index=pd.RangeIndex(rows, name="row"),
    )[COLUMNS]


def write_html(rows: int, folder: Path, templates_dir: Path) -> tuple[Path, Path]:
    """Write ``marked.html`` and ``plain.html`` for a ``rows``-row table into ``folder``."""
    from toolkit.inputs.spec import ReportSpec
    from toolkit.notebook import records as rec
    from toolkit.render.html import ReportContext, render_html
    from toolkit.render.template_folders import find_static

    buffer = io.BytesIO()
    frame(rows).to_parquet(buffer)
    table = rec.Table("events", buffer.getvalue(), caption=f"Events ({rows:,} rows)")
    spec = ReportSpec(name="long_table", title="Long table benchmark", notebook=Path("long_table.ipynb"))
    context = ReportContext(spec=spec, params={}, run_id="bench", generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    # The report links its project's static folder, which nbpress's fetcher overlays on the built-in
    # one; the raw CLI has no such fetcher, so both files link the file that is really there
    # (the raw side laid the table out without the stylesheet until 2026-12-02).
    linked = f'href="{(templates_dir / "static").resolve().as_uri()}/report.css"'
    stylesheet = f'href="{find_static(templates_dir, "report.css").resolve().as_uri()}"'
    for name, limit in (("marked", "default"), ("plain", None)):
        kwargs = {} if limit == "default" else {"long_table_rows": None}
        html = render_html(context, {"events": table}, {}, templates_dir, **kwargs)
        if linked not in html:
            raise ValueError("the report no longer links static/report.css: update benchmarks.tables")
        html = html.replace(linked, stylesheet)
        path = folder / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def check_pdf(path: Path, rows: int) -> list[str]:
    """Problems with a table PDF: rows missing or out of order, a table page without the
    header row, a footer that is not "Page i of N" on page i. Empty when all is well."""
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages.pop()
    problems, seen = [], []
    for number, page in enumerate(pages, 1):
        found = [int(n) for n in _ROW.findall(page)]
        seen += found
        if found and not _HEADER.search(page):
            problems.append(f"page {number}: rows without the header row")
        if f"Page {number} of {len(pages)}" not in page:
            problems.append(f"page {number}: footer is not 'Page {number} of {len(pages)}'")
    if seen != list(range(rows)):
        missing = sorted(set(range(rows)) - set(seen))
        problems.append(f"rows: {len(seen)} found, {len(missing)} missing (first {missing[:5]}), in order: {seen == sorted(seen)}")
    return problems
