"""A batch of the demo report: nbpress's executors against a loop of the raw tools, in one run.

    python -m benchmarks.batch [--quick]                                 (also: make bench-batch)

The Weekly Statistics demo report over the last 16 weeks of the demo data (``--grid
"week=last 16"``, as of 2026-11-23), three ways on a copy of notebooks/ and templates/:

(a) raw: for each member, the ``papermill`` CLI then the ``weasyprint`` CLI (on the report.html
    nbpress wrote for the same week, base URL its run folder), one after the other;
(b) ``nbpress run --grid`` with the local executor (default: two workers per CPU, kernels
    forked from a warm template, a fresh kernel process per run); (b1) the same with ``-w CPUS``,
    one worker per CPU, to show what the second worker per CPU costs or buys;
(c) the same on ``--cluster local:2`` (a Dask LocalCluster for 2 CPUs, two worker processes per
    CPU like (b), writing run folders in place). Cluster start-up is inside the measured wall time.

Prints wall time, CPU, runs per minute and throughput ratios against (a), and per-stage medians
of the members of (b) (kernel start, cells, HTML, PDF, from run.json and the executed notebook);
target: (b) at least 8x (a), (c) within 15% of (b). Every PDF is checked to exist. No timed asserts: these machines are shared, so
read the ratios. Results go to benchmarks/results/batch-latest.json (``--json PATH``: elsewhere;
``python -m benchmarks.performance_doc`` quotes the medians of every ``batch-*.json`` there with
the same ``workers_per_cpu`` as the last: files from before it was recorded had (b) at two per
CPU and (b1) at one, as now; those of the one-per-CPU default had them the other way round).
``--quick``: 4 members.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from . import measure
from .pipeline import BIN, RESULTS, _demo_project, _log

AS_OF = "2026-11-23"  # a Monday: `last N` weeks are the demo data's last N full weeks
TARGET = 8.0  # (b) throughput / (a) throughput
CLUSTER_WITHIN = 0.15  # (c) wall at most 15% over (b)
OTHER_WORKERS_PER_CPU = 1  # (b1): the other choice, measured beside the default in every run
# Memory samples read every process's smaps: every 20 ms over a dozen processes, the sampler took
# ~40% of a core from the batch it measured. Peaks of seconds-long processes need no finer grain.
SAMPLE_EVERY = 0.5


def _nbpress_batch(project: Path, db: Path, members: int, out: Path, cluster: str | None,
                   workers: int | None = None) -> tuple[measure.Measurement, list[Path]]:
    cmd = [str(BIN / "nbpress"), "--project", str(project), "run", "weekly_statistics", "--grid", f"week=last {members}",
           "--as-of", AS_OF, "-p", f"database_url=sqlite:///{db}", "--out", str(out)]  # fmt: skip
    if cluster:
        cmd += ["--cluster", cluster]
    if workers:
        cmd += ["-w", str(workers)]
    result = measure.run(cmd, cwd=project, sample_every=SAMPLE_EVERY)  # raises if any member failed (exit 1)
    runs = sorted((out / "weekly_statistics").iterdir())
    if len(runs) != members or not all((r / "report.pdf").exists() for r in runs):
        raise SystemExit(f"{out}: expected {members} run folders with a PDF each")
    return result, runs


def _raw_loop(project: Path, db: Path, html_runs: list[Path], out: Path) -> measure.Measurement:
    """papermill then weasyprint per member, one member after the other."""
    notebooks = project / "notebooks"
    walls = cpus = 0.0
    peak = 0.0
    for run in html_runs:
        week = json.loads((run / "run.json").read_text())["parameters"]["week"]
        target = out / week
        target.mkdir(parents=True)
        for cmd in (
            [str(BIN / "papermill"), str(notebooks / "weekly_statistics.ipynb"), str(target / "executed.ipynb"),
             "--cwd", str(notebooks), "--no-progress-bar", "--log-level", "WARNING",
             "-p", "week", week, "-p", "database_url", f"sqlite:///{db}"],
            [str(BIN / "weasyprint"), "-q", "--custom-metadata", "-u", run.as_uri() + "/", str(run / "report.html"),
             str(target / "report.pdf")],
        ):  # fmt: skip
            result = measure.run(cmd, cwd=notebooks, sample_every=SAMPLE_EVERY)
            walls, cpus, peak = walls + result.wall, cpus + result.cpu, max(peak, result.tree_rss)
        if not (target / "report.pdf").exists():
            raise SystemExit(f"{target}: no PDF")
    return measure.Measurement(wall=walls, cpu=cpus, tree_rss=peak, tree_pss=float("nan"), max_rss=float("nan"), processes=2)


def _stages(runs: list[Path]) -> dict[str, float]:
    """Median seconds per stage over the members: kernel start (papermill's start to the first
    cell), cells, HTML and PDF (run.json's timings)."""
    found: dict[str, list[float]] = {"kernel start": [], "cells": [], "html": [], "pdf": []}
    for run in runs:
        timings = json.loads((run / "run.json").read_text())["timings"]
        meta = json.loads((run / "executed.ipynb").read_text())
        started = dt.datetime.fromisoformat(meta["metadata"]["papermill"]["start_time"])
        first = min(dt.datetime.fromisoformat(c["metadata"]["papermill"]["start_time"])
                    for c in meta["cells"] if c["metadata"].get("papermill", {}).get("start_time"))
        kernel = (first - started).total_seconds()
        found["kernel start"].append(kernel)
        found["cells"].append(timings["execute"] - kernel)
        found["html"].append(timings["html"])
        found["pdf"].append(timings["pdf"])
    return {name: statistics.median(values) for name, values in found.items()}


def _row(name: str, m: measure.Measurement, members: int, raw: measure.Measurement) -> dict:
    return {"name": name, "wall": m.wall, "cpu": m.cpu, "tree_rss": m.tree_rss, "runs_per_minute": 60 * members / m.wall,
            "throughput_vs_raw": raw.wall / m.wall, "cpu_vs_raw": m.cpu / raw.cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 members instead of 16")
    parser.add_argument("--json", type=Path, default=RESULTS / "batch-latest.json",
                        help="where to write the results (benchmarks.performance_doc reads benchmarks/results/batch-*.json)")
    args = parser.parse_args()
    members = 4 if args.quick else 16
    from toolkit.batch.local import WORKERS_PER_CPU  # (b)'s default, recorded with the results

    results: dict = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.batch", *sys.argv[1:]]),
        "load_average": measure.os.getloadavg()[0],
        "quick": args.quick,
        "members": members,
        "machine": {"cpus": measure.os.cpu_count(), "python": platform.python_version()},
        "workers_per_cpu": {"b": WORKERS_PER_CPU, "b1": OTHER_WORKERS_PER_CPU},
    }
    with tempfile.TemporaryDirectory(prefix="nbpress-bench-batch-") as tmp:
        tmp = Path(tmp)
        project, db = _demo_project(tmp)
        _log("warm-up: one nbpress run")
        measure.run([str(BIN / "nbpress"), "--project", str(project), "run", "weekly_statistics", "-p",
                     f"database_url=sqlite:///{db}", "--out", str(tmp / "warm")], cwd=project)  # fmt: skip
        _log(f"(b) nbpress run --grid, local executor ({WORKERS_PER_CPU} per CPU), {members} members")
        local, html_runs = _nbpress_batch(project, db, members, tmp / "local", None)
        _log(f"    {local.wall:.1f} s")
        other = OTHER_WORKERS_PER_CPU * (measure.os.cpu_count() or 1)
        _log(f"(b1) nbpress run --grid -w {other} ({OTHER_WORKERS_PER_CPU} per CPU), {members} members")
        other_layout, _ = _nbpress_batch(project, db, members, tmp / "local2", None, other)
        _log(f"    {other_layout.wall:.1f} s")
        stages = _stages(html_runs)
        _log(f"(a) raw papermill + weasyprint loop, {members} members")
        raw = _raw_loop(project, db, html_runs, tmp / "raw")
        _log(f"    {raw.wall:.1f} s")
        _log(f"(c) nbpress run --grid --cluster local:2, {members} members")
        dask, _ = _nbpress_batch(project, db, members, tmp / "dask", "local:2")
        _log(f"    {dask.wall:.1f} s")
    rows = [_row("(a) papermill + weasyprint loop", raw, members, raw),
            _row(f"(b) nbpress --grid (local, {WORKERS_PER_CPU}/CPU)", local, members, raw),
            _row(f"(b1) nbpress --grid -w {other} ({OTHER_WORKERS_PER_CPU}/CPU)", other_layout, members, raw),
            _row("(c) nbpress --cluster local:2", dask, members, raw)]
    results["rows"] = rows
    results["stages_b"] = stages
    cluster_over = dask.wall / local.wall - 1
    results["target"] = {"local_throughput_vs_raw": TARGET, "met": rows[1]["throughput_vs_raw"] >= TARGET,
                         "cluster_within": CLUSTER_WITHIN, "cluster_over_local": cluster_over,
                         "cluster_met": cluster_over <= CLUSTER_WITHIN}
    results["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")

    print(f"\n{members} members of weekly_statistics on {results['machine']['cpus']} CPUs")
    print(f"{'':<34}{'wall':>9}{'cpu':>9}{'runs/min':>10}{'throughput':>12}{'cpu':>8}")
    print("-" * 82)
    for r in rows:
        print(f"{r['name']:<34}{r['wall']:>8.1f}s{r['cpu']:>8.1f}s{r['runs_per_minute']:>10.1f}"
              f"{r['throughput_vs_raw']:>11.2f}x{r['cpu_vs_raw']:>7.2f}x")
    print("\n(b) per member, medians: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in stages.items()))
    verdict = "ok" if results["target"]["met"] else "MISSED"
    print(f"target: (b) >= {TARGET:.0f}x the throughput of (a): {verdict}; ratios are against (a) in this run")
    verdict = "ok" if results["target"]["cluster_met"] else "MISSED"
    print(f"target: (c) wall within {CLUSTER_WITHIN:.0%} of (b): {cluster_over:+.0%}, {verdict}")
    print("cpu: user+system of the command and every process it waited for (a: summed over its commands)")
    print(f"results: {args.json}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
