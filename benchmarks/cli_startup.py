"""How fast ``nbpress`` answers when it has nothing heavy to do: medians and ratios.

    python -m benchmarks.cli_startup [--repeats N] [--quick]      (also: make bench)

Commands, each run N times (default 15) in turn, on a copy of the repository's notebooks/:

* ``nbpress --help``
* ``nbpress params weekly_statistics``            reads the spec and the parameters cell
* ``nbpress run weekly_statistics -p nope=1``     refused: unknown parameter (exit 2)
* ``nbpress run weekly_statistics -p top_n=x``    refused: bad value (exit 2)
* ``nbpress run nothing``                         refused: no such report (exit 2)
* ``nbpress run weekly_statistics --nope``        refused by the option parser (exit 2)

against ``python -c pass`` (the interpreter's own start) and ``papermill --help`` (the raw tool).
Target: every nbpress command under 0.3 s on a quiet machine. No timed asserts (shared, noisy
machines): read the ratios. Results also go to benchmarks/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.3  # seconds, on a quiet machine

BASELINES = {
    "python -c pass": ([sys.executable, "-c", "pass"], 0),
    "papermill --help": ([str(BIN / "papermill"), "--help"], 0),
}
COMMANDS = {
    "nbpress --help": (["--help"], 0),
    "nbpress params weekly_statistics": (["params", "weekly_statistics"], 0),
    "refused: -p nope=1": (["run", "weekly_statistics", "-p", "nope=1"], 2),
    "refused: -p top_n=x": (["run", "weekly_statistics", "-p", "top_n=x"], 2),
    "refused: no such report": (["run", "nothing"], 2),
    "refused: unknown option": (["run", "weekly_statistics", "--nope"], 2),
}


def _time(cmd: list[str], cwd: Path, expected: int) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    if result.returncode != expected:  # a benchmark of the wrong outcome measures nothing
        raise SystemExit(f"{' '.join(cmd)}: exit {result.returncode}, expected {expected}\n{result.stderr}")
    return wall


def measure(repeats: int) -> dict[str, dict]:
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nbpress-cli-bench-") as tmp:
        project = Path(tmp)
        shutil.copytree(ROOT / "notebooks", project / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        everything = {**BASELINES, **{k: ([str(BIN / "nbpress"), *args], code) for k, (args, code) in COMMANDS.items()}}
        for cmd, code in everything.values():  # warm the file cache once; not counted
            _time(cmd, project, code)
        for i in range(repeats):
            # Round-robin, so a burst of load on the shared machine hits every command alike.
            order = list(everything.items())
            for name, (cmd, code) in order if i % 2 == 0 else reversed(order):
                runs.setdefault(name, []).append(_time(cmd, project, code))
    return {name: {"median": statistics.median(times), "min": min(times), "runs": times} for name, times in runs.items()}


def print_table(results: dict[str, dict]) -> None:
    python = results["python -c pass"]["median"]
    papermill = results["papermill --help"]["median"]
    print(f"\n{'command':<36}{'median':>9}{'min':>9}{'x python':>10}{'x papermill':>13}  target")
    print("-" * 86)
    for name, r in results.items():
        verdict = "" if name in BASELINES else (f"< {TARGET:.1f} s " + ("ok" if r["median"] < TARGET else "MISSED"))
        print(f"{name:<36}{r['median']:>8.3f}s{r['min']:>8.3f}s{r['median'] / python:>9.1f}x{r['median'] / papermill:>12.2f}x  {verdict}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average while measuring: {load:.2f} on {os.cpu_count()} CPUs (the target is for a quiet machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs of each command (median reported)")
    parser.add_argument("--quick", action="store_true", help="5 runs each")
    args = parser.parse_args()
    results = measure(5 if args.quick else args.repeats)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"results: {RESULTS / 'cli_startup.json'}")


if __name__ == "__main__":
    main()
