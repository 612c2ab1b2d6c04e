"""``tk.preview()`` on the demo report's records against a raw WeasyPrint render of the same HTML.

Both run in this process, as in the analyst's kernel: the first preview (``cold``: imports,
fonts) is reported apart; then previews and raw renders alternate. The preview includes
everything ``tk.preview()`` does (spec and template lookup, HTML, assets in a temporary
folder, PDF, clean-up) except asking the Jupyter server the notebook's name (no server here:
the report is named). Target: a preview under 1 s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

TARGET_SECONDS = 1.0


def bench_preview(project: Path, run_dir: Path, repeats: int) -> dict:
    import nbformat

    from toolkit.notebook import records as rec
    from toolkit.notebook.preview import render_preview

    records = rec.read_records(nbformat.read(str(run_dir / "executed.ipynb"), as_version=4))
    start = time.perf_counter()
    first = render_preview(records, "weekly_statistics", project, display=False)
    cold = time.perf_counter() - start

    import weasyprint

    html, base_url = (run_dir / "report.html").read_text(encoding="utf-8"), run_dir.resolve().as_uri() + "/"
    ours, raw = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        render_preview(records, "weekly_statistics", project, display=False)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        weasyprint.HTML(string=html, base_url=base_url).write_pdf()
        raw.append(time.perf_counter() - start)
    return {"cold": cold, "preview": statistics.median(ours), "raw": statistics.median(raw), "pages": first.pages,
            "runs": {"preview": ours, "raw": raw}}  # fmt: skip


def print_preview(result: dict) -> None:
    ratio = result["preview"] / result["raw"] if result["raw"] else float("nan")
    verdict = "ok" if result["preview"] < TARGET_SECONDS else "MISSED"
    print(f"tk.preview() on the demo records: median {result['preview']:.2f} s ({result['pages']} pages), "
          f"raw WeasyPrint on the same HTML {result['raw']:.2f} s, ratio {ratio:.2f}x; "
          f"target < {TARGET_SECONDS:.0f} s {verdict}; first preview in a fresh process {result['cold']:.2f} s")  # fmt: skip
