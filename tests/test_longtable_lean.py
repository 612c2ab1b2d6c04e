"""Drawn long tables keep one WeasyPrint process: a spawned worker lays out, this one plans and joins.

Each case runs nbpress's renderer in a fresh interpreter (the process under test must not have
loaded anything before) with two workers, as on a two-core machine, and reports which of the
heavy libraries it loaded itself: with every long table drawn, neither WeasyPrint nor fpdf2
(the worker had them); with a table that falls back to WeasyPrint's chunks, this process lays
out too, for speed, as before.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.test_longtable import _check_table, _frame, _html, _pages, _table

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys
from pathlib import Path
from toolkit.render import longtable_direct
from toolkit.render.pdf import write_pdf

longtable_direct.DIRECT_ROWS = 10
if __name__ == "__main__":
    html, pdf, templates = sys.argv[1:4]
    result = write_pdf(Path(html).read_text(), Path(pdf), base_dir=Path(pdf).parent, templates_dir=Path(templates), workers=2)
    print(result.pages, *(name in sys.modules for name in ("weasyprint", "fpdf")))
"""


def _render(project, tmp_path, html: str, name: str) -> tuple[Path, bool, bool]:
    script, source, pdf = tmp_path / "render.py", tmp_path / f"{name}.html", tmp_path / f"{name}.pdf"
    script.write_text(SCRIPT)
    source.write_text(html)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script), str(source), str(pdf), str(project.templates_dir)],
                         check=True, capture_output=True, text=True, env=env, timeout=120).stdout.split()
    return pdf, out[1] == "True", out[2] == "True"


def test_drawn_tables_leave_layout_to_one_worker_and_fallbacks_lay_out_here_too(project, tmp_path):
    html = _html(project, {"events": _table("events", _frame(100), "Events")}, long_table_rows=10)
    pdf, weasyprint, fpdf = _render(project, tmp_path, html, "drawn")
    assert (weasyprint, fpdf) == (False, False)
    _check_table(_pages(pdf), 100)

    marked_up = re.sub(r"<td([^>]*)>(user-[^<]*)</td>", r"<td\1><b>\2</b></td>", html, count=1)
    pdf, weasyprint, _ = _render(project, tmp_path, marked_up, "fallback")
    assert weasyprint  # not drawn: WeasyPrint's chunks are laid out here as well as in the worker
    _check_table(_pages(pdf), 100)
