"""Write docs/performance.md from the benchmarks' result files (``benchmarks/results/``).

    python -m benchmarks.performance_doc [--results benchmarks/results] [--out docs/performance.md]

Nothing in the page is typed by hand, as with docs/reliability.md: every figure comes from a
result file a benchmark wrote, and each section names the command that wrote it, when it ran and
how busy the machine was (the 1-minute load average; the goals are for a quiet machine). One
section per kind of work; a kind with no result files yet says so. ``make bench-portal`` writes
the downloads' files and then this page.

Sections:

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


def _when(path: Path, data: dict | None = None) -> str:
    """When the run finished: recorded in the file, else the file's modification time."""
    if data and data.get("finished"):
        return data["finished"]
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
            ("accel", "portal behind nginx (X-Accel-Redirect)", "ratio_accel"))
    for name, label, ratio_key in rows:
        rps = statistics.median(data[name]["rps"] for _, data in runs)
        cpu = statistics.median(sum(data[name]["server_cpu_ms_per_request"]) for _, data in runs)
        if ratio_key:
            ratios = [data[ratio_key] for _, data in runs]
            median = statistics.median(ratios)
            verdict = "meets" if median >= DOWNLOAD_GOAL else "below"
            ratio_cell = f"{median:.2f}x ({verdict} the {DOWNLOAD_GOAL}x goal)"
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
        "Every download keeps every check: the JWT (one verified decode), the token's state (deny-list, "
        "`tokens_valid_after`, disabled user, device) and the grant rule in one SELECT, withdrawal (410), and the "
        "audit row committed before the bytes go out. Goal (issue 17): at least "
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


# One renderer per kind of work, in page order: (result files, lines). A new benchmark adds its own.
SECTIONS: tuple[Callable[[Path], list[str]], ...] = (downloads,)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance_doc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args(argv)
    args.out.write_text(render(args.results), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
