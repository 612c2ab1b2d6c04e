"""Write docs/performance.md from the benchmarks' result files (``benchmarks/results/``).

    python -m benchmarks.performance_doc [--results benchmarks/results] [--out docs/performance.md]
                                         [--only batches|long_tables|downloads]

Nothing in the page is typed by hand, as with docs/reliability.md: every figure comes from a
result file a benchmark wrote, and each section names the command that wrote it, when it ran and
how busy the machine was (the 1-minute load average; the goals are for a quiet machine). One
section per kind of work; a kind with no result files yet says so. ``make bench-portal`` writes
the downloads' files and then this page. ``--only SECTION`` rewrites that one section of the
existing page and keeps the others as they were generated (result files are not kept in the
repository: a new checkout holds only the ones it made itself).

Sections:

* batches: ``benchmarks.batch`` (16 members: the raw papermill + weasyprint loop, ``--grid``
  locally, ``--cluster local:2``; one file per run, ``batch-*.json``; medians over the runs with
  the last run's workers per CPU).
* long tables: ``benchmarks.pipeline`` (``latest.json``: the tables workload, nbpress's renderer
  against raw WeasyPrint, medians of its repeats).
* downloads: ``benchmarks.portal`` (wrk against nginx static, one file per run:
  ``portal-*.json``; medians over the runs) and ``benchmarks.portal_profile`` (CPU per download
  and per stage, ``portal_profile.json``; with ``--against`` before and after in one run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOWNLOAD_GOAL = 0.4  # issue 17: >= 0.4x nginx static, direct and behind nginx
BATCH_GOAL, CLUSTER_WITHIN = 8.0, 0.15  # issue 17: --grid >= 8x the raw loop; local:2 within 15% of it
# Workers per CPU in benchmarks.batch's (b), (b1); also what result files from before the layout
# was recorded had.
DEFAULT_BATCH_LAYOUT = {"b": 2, "b1": 1}
TABLE_GOALS = {5000: 0.25, 20000: 0.15}  # issue 17: wall time against raw WeasyPrint
TABLE_MEMORY_BEFORE = {5000: 0.26, 20000: 0.09}  # issue 17's "memory as today or better" (tree RSS ratio)


def _when(path: Path, data: dict | None = None) -> str:
    """When the run finished: recorded in the file, else the file's modification time."""
    if data and data.get("finished"):
        return data["finished"]
    if data and data.get("started"):  # files written before "finished" was recorded
        return "started " + dt.datetime.fromisoformat(data["started"]).strftime("%Y-%m-%d %H:%M UTC")
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _load(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "not recorded"


def _downloads_wrk(runs: list[tuple[Path, dict]]) -> list[str]:
    if not runs:
        return ["No `benchmarks.portal` results yet: `make bench-portal` (or `python -m benchmarks.portal --json "
                "benchmarks/results/portal-1.json`, once per run)."]
    first = runs[0][1]
    lines = [
        f"`python -m benchmarks.portal --json benchmarks/results/portal-N.json`, {len(runs)} run(s), the last at "
        f"{_when(*runs[-1])}: a {first['pdf_bytes']:,}-byte PDF, {first['duration_s']} s per server, "
        f"{first['connections']} connections ({first['client']}), gunicorn {first['workers']} workers x {first['threads']} threads "
        f"(SQLite), nginx {first['workers']} workers; load average at the start of each run: "
        + ", ".join(_load(data.get("load_average")) for _, data in runs) + ".",
        "",
        "| server | requests/s (median) | ratio to nginx static (median) | per run | server CPU ms per download (median) |",
        "|---|---:|---:|---|---:|",
    ]
    rows = (("nginx", "nginx static file", None), ("portal", "portal, gunicorn direct", "ratio"),
            ("accel", "portal behind nginx (X-Accel-Redirect)", "ratio_accel"),
            ("floor", "gunicorn alone serving the file, no check (the floor)", "ratio_floor"))
    for name, label, ratio_key in rows:
        if not all(name in data for _, data in runs):  # runs from before the floor row
            continue
        rps = statistics.median(data[name]["rps"] for _, data in runs)
        cpu = statistics.median(sum(data[name]["server_cpu_ms_per_request"]) for _, data in runs)
        if ratio_key:
            ratios = [data[ratio_key] for _, data in runs]
            median = statistics.median(ratios)
            verdict = "meets" if median >= DOWNLOAD_GOAL else "below"
            ratio_cell = f"{median:.2f}x" if name == "floor" else f"{median:.2f}x ({verdict} the {DOWNLOAD_GOAL}x goal)"
            per_run = ", ".join(f"{r:.2f}x" for r in ratios)
        else:
            ratio_cell, per_run = "1.00x", ""
        lines.append(f"| {label} | {rps:,.0f} | {ratio_cell} | {per_run} | {cpu:.2f} |")
    lines += ["", "Server CPU behind nginx is gunicorn's plus nginx's. Every counted portal response was checked "
              "against the audit log (one `download ok` row each) and the first against the published SHA-256."]
    return lines


def _downloads_profile(found: tuple[Path, dict] | None) -> list[str]:
    if found is None:
        return ["No `benchmarks.portal_profile` results yet: `python -m benchmarks.portal_profile --profile "
                "--json benchmarks/results/portal_profile.json` (add `--against TREE` for before and after)."]
    path, data = found
    if "before" in data:
        before, after = data["before"], data["after"]
        rounds = data["cpu_ms_rounds"]
        lines = [
            f"`python -m benchmarks.portal_profile --against {data['before_tree']} --rounds {data['rounds']} "
            f"{'--label ' + repr(data['before_label']) + ' ' if data.get('before_label') else ''}--json "
            f"benchmarks/results/portal_profile.json`, {_when(path, data)}: the portal of `{data['before_tree']}` "
            f"{'(' + data['before_label'] + ') ' if data.get('before_label') else ''}(before) and of this "
            "tree (after), alternately in fresh processes, in-process downloads through Flask's test client (no network); "
            "the quietest round of each. Load average at the start: " + _load(data.get("load_average")) + ".",
            "",
            f"- before: **{before['cpu_ms']:.2f} ms** CPU per download, {before['statements']} SQL statements "
            f"(rounds: {', '.join(f'{c:.2f}' for c in rounds['before'])})",
            f"- after: **{after['cpu_ms']:.2f} ms** CPU per download, {after['statements']} SQL statements "
            f"(rounds: {', '.join(f'{c:.2f}' for c in rounds['after'])})",
            "",
            "| stage (estimated ms of the unprofiled CPU) | before | after |",
            "|---|---:|---:|",
        ]
        for stage in before["stages"]:
            later = next((s["ms"] for s in after["stages"] if s["stage"] == stage["stage"]), 0.0)
            lines.append(f"| {stage['stage']} | {stage['ms']:.2f} | {later:.2f} |")
        return lines
    lines = [f"`python -m benchmarks.portal_profile --profile --json benchmarks/results/portal_profile.json`, {_when(path)}: "
             f"**{data['cpu_ms']:.2f} ms** CPU per download, {data['statements']} SQL statements "
             f"(load average {_load(data.get('load_average'))}).", "", "| stage | estimated ms |", "|---|---:|"]
    return lines + [f"| {s['stage']} | {s['ms']:.2f} |" for s in data["stages"]]


def downloads(results: Path) -> list[str]:
    runs = [(p, json.loads(p.read_text(encoding="utf-8"))) for p in sorted(results.glob("portal-*.json"))]
    profile = results / "portal_profile.json"
    return [
        "## Downloads: an authenticated 1 MB PDF against nginx serving it as a static file",
        "",
        "Every download keeps every check: the JWT (verified once per worker process, its expiry on every request), "
        "the token's state (deny-list, `tokens_valid_after`, disabled user, device) and the grant rule in one SELECT, "
        "withdrawal (410), and the audit row committed before the bytes go out. Plain downloads take the express "
        "path (`publish_server/express_downloads.py`), every other request Flask's. Goal (issue 17): at least "
        f"{DOWNLOAD_GOAL}x nginx's requests/s, direct and behind nginx.",
        "",
        "### Throughput (wrk)",
        "",
        *_downloads_wrk(runs),
        "",
        "### Where one download's CPU goes",
        "",
        *_downloads_profile((profile, json.loads(profile.read_text(encoding="utf-8"))) if profile.exists() else None),
    ]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _per_cpu(count: int) -> str:
    return {1: "one worker per CPU", 2: "two workers per CPU"}.get(count, f"{count} workers per CPU")


def batches(results: Path) -> list[str]:
    found = [(p, json.loads(p.read_text(encoding="utf-8"))) for p in sorted(results.glob("batch-*.json"))]
    # (b) and (b1) swapped meaning while the default was one worker per CPU: medians only over
    # runs of the last run's layout.
    layout = found[-1][1].get("workers_per_cpu", DEFAULT_BATCH_LAYOUT) if found else DEFAULT_BATCH_LAYOUT
    runs = [(p, data) for p, data in found if data.get("workers_per_cpu", DEFAULT_BATCH_LAYOUT) == layout]
    head = [
        "## Batches: 16 members of the demo report against a loop of the raw tools",
        "",
        "Each run measures, one after the other on the same machine: (a) for each member the `papermill` CLI then "
        f"the `weasyprint` CLI; (b) `nbpress run --grid` with the local executor ({_per_cpu(layout['b'])}, "
        f"{'its default' if layout == DEFAULT_BATCH_LAYOUT else 'the default when these ran'}); "
        f"(b1) the same with {_per_cpu(layout['b1'])}; (c) `--cluster local:2`. Every member's PDF is checked to exist. "
        f"Goals (issue 17): (b) at least {BATCH_GOAL:.0f}x the throughput of (a); (c) within {CLUSTER_WITHIN:.0%} of (b).",
        "",
    ]
    if not runs:
        return [*head, "No `benchmarks.batch` results yet: `make bench-batch`."]
    if len(runs) < len(found):
        head += [f"{len(found) - len(runs)} older run(s) with another number of workers per CPU in (b) and (b1) "
                 "are left out.", ""]
    last = runs[-1][1]
    names = [row["name"] for row in last["rows"]]
    lines = [
        *head,
        f"`{last.get('command', 'python -m benchmarks.batch')}` and its repeats, {len(runs)} run(s), the last at "
        f"{_when(*runs[-1])}, {last['members']} members on {last['machine']['cpus']} CPUs; load average at the start "
        "of each run: " + ", ".join(_load(data.get("load_average")) for _, data in runs) + ".",
        "",
        "| way | wall (median) | CPU (median) | throughput against (a) (median) | per run |",
        "|---|---:|---:|---:|---|",
    ]
    for i, name in enumerate(names):
        rows = [data["rows"][i] for _, data in runs if len(data["rows"]) > i]
        ratio = _median([r["throughput_vs_raw"] for r in rows])
        per_run = ", ".join(f"{r['throughput_vs_raw']:.2f}x" for r in rows)
        verdict = ""
        if name.startswith("(b) "):
            verdict = " (goal met)" if ratio >= BATCH_GOAL else f" (below the {BATCH_GOAL:.0f}x goal)"
        lines.append(f"| {name} | {_median([r['wall'] for r in rows]):.1f} s | {_median([r['cpu'] for r in rows]):.1f} s "
                     f"| {ratio:.2f}x{verdict} | {per_run} |")
    over = [data["target"]["cluster_over_local"] for _, data in runs]
    met = "within" if _median(over) <= CLUSTER_WITHIN else "not within"
    lines += [
        "",
        f"(c)'s wall time against (b): {_median(over):+.0%} (median; per run: " + ", ".join(f"{o:+.0%}" for o in over)
        + f"): {met} the {CLUSTER_WITHIN:.0%} goal. CPU is user + system time of the command and every process it "
        "waited for (for (a), summed over its commands).",
    ]
    stages = last.get("stages_b")
    if stages:
        lines += ["", "Per member in (b) of the last run, medians: "
                  + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in stages.items())
                  + " (wall time inside each member's worker; members overlap)."]
    return lines


def _memory_verdict(rows: int, ratio: float) -> str:
    before = TABLE_MEMORY_BEFORE.get(rows)
    if before is None:
        return ""
    return " (as before or better)" if ratio <= before + 0.005 else f" (more than {before}x before)"


def long_tables(results: Path) -> list[str]:
    path = results / "latest.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    head = [
        "## Long tables: an 8-column table of 5,000 and 20,000 rows against raw WeasyPrint",
        "",
        "nbpress's renderer (HTML in, PDF out) against the `weasyprint` CLI on the same table with ordinary table "
        "markup and style, alternately. Each PDF is checked: every row present and in order, the header row on every "
        "table page, \"Page i of N\" on page i. Goals (issue 17): wall time at most "
        + " and ".join(f"{goal}x at {rows:,} rows" for rows, goal in TABLE_GOALS.items()) + "; memory (sum of RSS over "
        "the process tree) as low as when the issue was filed or lower ("
        + " and ".join(f"{ratio}x at {rows:,} rows" for rows, ratio in TABLE_MEMORY_BEFORE.items()) + ").",
        "",
    ]
    if not data.get("tables"):
        return [*head, "No tables results yet: `python -m benchmarks.pipeline --only tables`."]
    lines = [
        *head,
        f"`{data.get('command', 'python -m benchmarks.pipeline')}`, {_when(path, data)}; load average at the "
        f"start: {_load(data.get('load_average'))}; WeasyPrint {data['machine'].get('weasyprint', '?')}.",
        "",
        "| rows | runs | nbpress wall (median) | raw wall (median) | ratio | nbpress RSS | raw RSS | ratio | pages (nbpress / raw) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in data["tables"]:
        ours, raw = t["nbpress"], t["raw"]
        ratio = ours["wall"] / raw["wall"]
        goal = TABLE_GOALS.get(t["rows"])
        verdict = "" if goal is None else (" (goal met)" if ratio <= goal else f" (goal {goal}x missed)")
        checks = t.get("checks", {})
        problems = sum(len(c.get("problems", [])) for c in checks.values())
        pages = f"{checks.get('nbpress', {}).get('pages', '?')} / {checks.get('raw', {}).get('pages', '?')}"
        lines.append(f"| {t['rows']:,} | {len(ours.get('runs', [])) or '?'} | {ours['wall']:.1f} s | {raw['wall']:.1f} s "
                     f"| {ratio:.2f}x{verdict} | {ours['tree_rss']:.0f} MiB | {raw['tree_rss']:.0f} MiB "
                     f"| {ours['tree_rss'] / raw['tree_rss']:.2f}x{_memory_verdict(t['rows'], ours['tree_rss'] / raw['tree_rss'])} | {pages}" + ("" if not problems else f", {problems} problems")
                     + " |")
    return lines


# One renderer per kind of work, in page order: (result files, lines). A new benchmark adds its own.
SECTIONS: tuple[Callable[[Path], list[str]], ...] = (batches, long_tables, downloads)


def render(results: Path) -> str:
    lines = [
        "# Performance: what the benchmarks measured",
        "",
        "<!-- Generated by `python -m benchmarks.performance_doc` from benchmarks/results/; do not edit by hand. -->",
        "Figures from the last runs of the benchmarks on this machine (2 CPUs unless said), with the commands that "
        "made them. Ratios compare with a baseline measured in the same run; a busy machine (load average well "
        "above 0) lowers them, so quote them with it. No test is timed: the benchmarks print these figures.",
        "",
    ]
    for section in SECTIONS:
        lines += [*section(results), ""]
    return "\n".join(lines)


def replace_section(page: str, section: Callable[[Path], list[str]], results: Path) -> str:
    """``page`` with one section (from its ``## `` heading to the next) written again from ``results``."""
    new = section(results)
    lines = page.split("\n")
    try:
        start = lines.index(new[0])
    except ValueError:
        raise SystemExit(f"the page has no section {new[0]!r}: write the whole page instead") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], *new, "", *lines[end:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance_doc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--only", choices=[s.__name__ for s in SECTIONS],
                        help="rewrite this section of the existing page; keep the others")
    args = parser.parse_args(argv)
    if args.only:
        section = next(s for s in SECTIONS if s.__name__ == args.only)
        args.out.write_text(replace_section(args.out.read_text(encoding="utf-8"), section, args.results), encoding="utf-8")
    else:
        args.out.write_text(render(args.results), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
