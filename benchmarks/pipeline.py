"""nbpress against the raw tools it wraps, measured in one run: medians and ratios.

    python -m benchmarks.pipeline [--quick] [--only demo|tables] [--tables 5000x3,20000x1]      (also: make bench)

Two workloads, each run alternately with its raw counterpart so both see the same machine:

* demo: ``nbpress run weekly_statistics`` (the CLI, on a copy of notebooks/ and templates/
  and the demo database) against the raw ``papermill`` CLI on the same notebook and
  parameters followed by the raw ``weasyprint`` CLI on the report.html nbpress wrote (base
  URL: its run folder). Median of 5. Target: nbpress <= 1.10x.
  Then ``tk.preview()`` on the demo run's records against WeasyPrint on the same HTML, in
  process (benchmarks/preview.py): median of 5. Target: a preview under 1 s.
  Then ``nbpress preview`` on the demo run: template edit -> new PDF served, against WeasyPrint
  on the same HTML (benchmarks/live_preview.py): median of 5. Target: under 1 s.
* tables: a 5,000-row and a 20,000-row x 8-column table (dates, short strings, integers,
  floats), nbpress's renderer (``benchmarks.render_pdf``: HTML in, PDF out, like the CLI it
  is compared with) against ``weasyprint`` on the same table with the ordinary table markup
  and style. Median of 5 and of 3. Targets: wall time <= 0.25x at 5,000 rows and <= 0.15x at
  20,000 (0.5x for other sizes), <= 0.3x peak memory (sum of RSS over the whole process tree). Every PDF is checked: all rows present and in order,
  the header row on every table page, "Page i of N" on page i.

No timed asserts: these machines are shared and noisy, so read the ratios, not the seconds.
Results also go to benchmarks/results/latest.json. ``--quick``: 2 runs each, 5,000 rows only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import live_preview, measure, preview, tables

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
WEEK, DEMO_END = "2026-11-16", dt.date(2026, 11, 22)
TARGETS = {"demo": {"wall": 1.10}, "tables": {"wall": 0.5, "tree_rss": 0.3}}
# Issue 17: long tables in a quarter of raw WeasyPrint's wall time at 5,000 rows, a seventh at 20,000.
TABLE_WALL = {5000: 0.25, 20000: 0.15}


def table_wall_target(rows: int) -> float:
    return TABLE_WALL.get(rows, TARGETS["tables"]["wall"])


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _summary(runs: list[measure.Measurement]) -> dict:
    keys = ("wall", "cpu", "tree_rss", "tree_pss", "max_rss")
    return {
        **{k: statistics.median(getattr(r, k) for r in runs) for k in keys},
        "runs": [r.as_dict() for r in runs],
    }


# --- demo report ----------------------------------------------------------------------------


def _demo_project(tmp: Path) -> tuple[Path, Path]:
    notebook = ROOT / "notebooks" / "weekly_statistics.ipynb"
    for _ in range(60):  # the demo notebook may still be being written by someone else
        if notebook.exists():
            break
        _log("waiting for notebooks/weekly_statistics.ipynb ...")
        time.sleep(10)
    else:
        raise SystemExit("notebooks/weekly_statistics.ipynb does not exist")
    from toolkit.demo.demo_data import generate

    project = tmp / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "templates", project / "templates")
    db = tmp / "events.sqlite"
    generate(db, end=DEMO_END)
    return project, db


def _nbpress_demo(project: Path, db: Path) -> tuple[measure.Measurement, Path]:
    cmd = [str(BIN / "nbpress"), "--project", str(project), "run", "weekly_statistics",
           "-p", f"week={WEEK}", "-p", f"database_url=sqlite:///{db}"]  # fmt: skip
    before = set((project / "runs" / "weekly_statistics").glob("*"))
    result = measure.run(cmd, cwd=project)
    (run_dir,) = set((project / "runs" / "weekly_statistics").glob("*")) - before
    return result, run_dir


def _raw_demo(project: Path, db: Path, html_run: Path, out: Path) -> measure.Measurement:
    """papermill, then weasyprint on the HTML nbpress wrote: the raw tools doing the same job."""
    notebooks = project / "notebooks"
    executed = out / "executed.ipynb"
    papermill = measure.run(
        [str(BIN / "papermill"), str(notebooks / "weekly_statistics.ipynb"), str(executed), "--cwd", str(notebooks),
         "--no-progress-bar", "--log-level", "WARNING", "-p", "week", WEEK, "-p", "database_url", f"sqlite:///{db}"],
        cwd=notebooks,
    )  # fmt: skip
    weasy = measure.run(
        [str(BIN / "weasyprint"), "-q", "--custom-metadata", "-u", html_run.as_uri() + "/",
         str(html_run / "report.html"), str(out / "report.pdf")],
    )  # fmt: skip
    return measure.Measurement(
        wall=papermill.wall + weasy.wall,
        cpu=papermill.cpu + weasy.cpu,
        tree_rss=max(papermill.tree_rss, weasy.tree_rss),
        tree_pss=max(papermill.tree_pss, weasy.tree_pss),
        max_rss=max(papermill.max_rss, weasy.max_rss),
        processes=max(papermill.processes, weasy.processes),
    )


def bench_demo(tmp: Path, repeats: int) -> dict:
    project, db = _demo_project(tmp)
    raw_out = tmp / "raw-demo"
    raw_out.mkdir()
    _log("demo: warm-up runs")
    _, html_run = _nbpress_demo(project, db)
    _raw_demo(project, db, html_run, raw_out)
    ours, raw = [], []
    for i in range(repeats):
        result, run_dir = _nbpress_demo(project, db)
        ours.append(result)
        raw.append(_raw_demo(project, db, html_run, raw_out))
        _log(f"demo {i + 1}/{repeats}: nbpress {ours[-1].wall:.2f} s, papermill+weasyprint {raw[-1].wall:.2f} s")
    pages = _pdf_pages(run_dir / "report.pdf")
    footer = f"Page {pages} of {pages}" in _pdf_text(run_dir / "report.pdf")
    _log("demo: tk.preview() on the run's records")
    previewed = preview.bench_preview(project, run_dir, repeats)
    _log("demo: nbpress preview, template edits")
    live = live_preview.bench_live(project, run_dir, repeats)
    return {"nbpress": _summary(ours), "raw": _summary(raw), "checks": {"pages": pages, "footer_ok": footer},
            "preview": previewed, "live_preview": live}


# --- long tables ----------------------------------------------------------------------------


def bench_table(tmp: Path, rows: int, repeats: int) -> dict:
    folder = tmp / f"table-{rows}"
    marked, plain = tables.write_html(rows, folder, ROOT / "templates")
    ours_cmd = [sys.executable, "-m", "benchmarks.render_pdf", str(marked), str(folder / "nbpress.pdf"),
                "--base-dir", str(folder), "--templates", str(ROOT / "templates")]  # fmt: skip
    raw_cmd = [str(BIN / "weasyprint"), "-q", "--custom-metadata", "-u", folder.as_uri() + "/", str(plain), str(folder / "raw.pdf")]
    ours, raw, checks = [], [], {}
    for i in range(repeats):
        # Alternate which goes first, so neither always runs on a machine the other just warmed.
        for name in ("raw", "nbpress") if i % 2 == 0 else ("nbpress", "raw"):
            result = measure.run(raw_cmd if name == "raw" else ours_cmd, cwd=ROOT)
            (raw if name == "raw" else ours).append(result)
            if name not in checks:
                pdf = folder / f"{name}.pdf"
                checks[name] = {"pages": _pdf_pages(pdf), "problems": tables.check_pdf(pdf, rows)}
        _log(f"{rows:,} rows {i + 1}/{repeats}: nbpress {ours[-1].wall:.1f} s {ours[-1].tree_rss:.0f} MiB,"
             f" weasyprint {raw[-1].wall:.1f} s {raw[-1].tree_rss:.0f} MiB")  # fmt: skip
    return {"rows": rows, "nbpress": _summary(ours), "raw": _summary(raw), "checks": checks}


# --- report ---------------------------------------------------------------------------------


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _pdf_pages(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(path)).pages)


def _ratio(ours: float, raw: float) -> float:
    return ours / raw if raw else float("nan")


def print_table(results: dict) -> None:
    rows = []
    if "demo" in results:
        d = results["demo"]
        rows.append(("demo report", "wall", d["nbpress"]["wall"], d["raw"]["wall"], "s", TARGETS["demo"]["wall"]))
        rows.append(("", "cpu", d["nbpress"]["cpu"], d["raw"]["cpu"], "s", None))
        rows.append(("", "tree RSS", d["nbpress"]["tree_rss"], d["raw"]["tree_rss"], "MiB", None))
    for t in results.get("tables", []):
        label = f"{t['rows']:,} rows x 8"
        rows.append((label, "wall", t["nbpress"]["wall"], t["raw"]["wall"], "s", table_wall_target(t["rows"])))
        rows.append(("", "cpu", t["nbpress"]["cpu"], t["raw"]["cpu"], "s", None))
        rows.append(("", "tree RSS", t["nbpress"]["tree_rss"], t["raw"]["tree_rss"], "MiB", TARGETS["tables"]["tree_rss"]))
        rows.append(("", "tree PSS", t["nbpress"]["tree_pss"], t["raw"]["tree_pss"], "MiB", None))
        rows.append(("", "largest process", t["nbpress"]["max_rss"], t["raw"]["max_rss"], "MiB", None))
    print(f"\n{'workload':<18}{'measure':<17}{'nbpress':>12}{'raw tools':>12}{'ratio':>9}  target")
    print("-" * 78)
    for label, what, ours, raw, unit, target in rows:
        ratio = _ratio(ours, raw)
        verdict = "" if target is None else (f"<= {target:.2f}x " + ("ok" if ratio <= target else "MISSED"))
        fmt = "{:.2f} " if unit == "s" else "{:.0f} "
        print(f"{label:<18}{what:<17}{(fmt.format(ours) + unit):>12}{(fmt.format(raw) + unit):>12}{ratio:>8.2f}x  {verdict}")
    print()
    if "demo" in results:
        print(f"demo checks: {results['demo']['checks']}  (raw = papermill + weasyprint run one after the other)")
        preview.print_preview(results["demo"]["preview"])
        live_preview.print_live(results["demo"]["live_preview"])
    for t in results.get("tables", []):
        for name, check in t["checks"].items():
            state = "ok" if not check["problems"] else "; ".join(check["problems"][:3])
            print(f"{t['rows']:,} rows, {name} PDF: {check['pages']} pages; rows/header/page numbers: {state}")
    print("tree RSS: peak sum of RSS over the process and its descendants (shared pages counted in every process);")
    print("tree PSS: the same with shared pages split; largest process: kernel peak RSS of one process (/usr/bin/time).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each, 5,000 rows only")
    parser.add_argument("--only", choices=["demo", "tables"], help="run one workload")
    parser.add_argument("--tables", metavar="ROWSxRUNS,...", help="table sizes and runs, e.g. 5000x3,20000x1 (default 5000x5,20000x3)")
    args = parser.parse_args()
    demo_repeats, sizes = (2, [(5000, 2)]) if args.quick else (5, [(5000, 5), (20000, 3)])
    if args.tables:
        try:
            sizes = [(int(rows), int(runs)) for rows, runs in (size.split("x") for size in args.tables.split(","))]
        except ValueError:
            parser.error(f"--tables: {args.tables!r} is not ROWSxRUNS,... (e.g. 5000x3,20000x1)")

    import weasyprint

    results: dict = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.pipeline", *sys.argv[1:]]),
        "load_average": measure.os.getloadavg()[0],
        "quick": args.quick,
        "machine": {"cpus": measure.os.cpu_count(), "python": platform.python_version(), "weasyprint": weasyprint.__version__},
    }
    with tempfile.TemporaryDirectory(prefix="nbpress-bench-") as tmp:
        if args.only in (None, "demo"):
            results["demo"] = bench_demo(Path(tmp), demo_repeats)
        if args.only in (None, "tables"):
            results["tables"] = [bench_table(Path(tmp), rows, repeats) for rows, repeats in sizes]
    results["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"results: {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
