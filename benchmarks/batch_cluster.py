"""``--cluster local:2`` against the local executor only, alternating, several rounds.

    python -m benchmarks.batch_cluster [--rounds 3] [--members 16] [--before PATH]

Issue 17's second batch goal, (c) within 15% of (b), without benchmarks.batch's raw loop (a),
which takes minutes: each round runs (b) ``nbpress run --grid`` on the local executor, then
(c) the same with ``--cluster local:2``, on the demo report as in benchmarks.batch (same
members, every PDF checked). ``--before PATH``: also (c) with the code of another checkout
(e.g. ``git archive BASE | tar -x -C PATH``), to compare a change with its base in one run.
On a shared machine wall times are noisy: compare within a round, quote medians and CPU
(user + system of the command and every process it waited for), and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from . import measure
from .batch import AS_OF, CLUSTER_WITHIN, SAMPLE_EVERY
from .pipeline import BIN, ROOT, _demo_project, _log


def _batch(project: Path, db: Path, out: Path, members: int, cluster: str | None, code: Path) -> measure.Measurement:
    cmd = [str(BIN / "nbpress"), "--project", str(project), "run", "weekly_statistics", "--grid", f"week=last {members}",
           "--as-of", AS_OF, "-p", f"database_url=sqlite:///{db}", "--out", str(out)]  # fmt: skip
    if cluster:
        cmd += ["--cluster", cluster]
    env = {**os.environ, "PYTHONPATH": str(code)}
    result = measure.run(cmd, cwd=project, env=env, sample_every=SAMPLE_EVERY)  # raises if any member failed
    runs = list((out / "weekly_statistics").iterdir())
    if len(runs) != members or not all((r / "report.pdf").exists() for r in runs):
        raise SystemExit(f"{out}: expected {members} run folders with a PDF each")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--before", type=Path, help="a checkout whose --cluster local:2 runs too, as (c0)")
    args = parser.parse_args()
    ways = {"(b) local": (None, ROOT), "(c) local:2": ("local:2", ROOT)}
    if args.before:
        ways["(c0) local:2, --before"] = ("local:2", args.before.resolve())
    found: dict[str, list[measure.Measurement]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(prefix="nbpress-bench-cluster-") as tmp:
        tmp = Path(tmp)
        project, db = _demo_project(tmp)
        _log("warm-up: one nbpress run")
        _batch(project, db, tmp / "warm", 1, None, ROOT)
        for round_ in range(args.rounds):
            load = os.getloadavg()[0]
            for i, (name, (cluster, code)) in enumerate(ways.items()):
                found[name].append(_batch(project, db, tmp / f"r{round_}-{i}", args.members, cluster, code))
            local = found["(b) local"][-1]
            print(f"round {round_ + 1} (load {load:.1f}): " + " | ".join(
                f"{name} {runs[-1].wall:.1f} s wall {runs[-1].cpu:.1f} s cpu ({runs[-1].wall / local.wall - 1:+.0%} wall)"
                for name, runs in found.items()), flush=True)
    local = statistics.median(m.wall for m in found["(b) local"])
    for name, runs in found.items():
        wall, cpu = statistics.median(m.wall for m in runs), statistics.median(m.cpu for m in runs)
        print(f"median {name}: {wall:.1f} s wall, {cpu:.1f} s cpu, {wall / local - 1:+.0%} against (b)")
    over = statistics.median(m.wall for m in found["(c) local:2"]) / local - 1
    print(f"target: (c) wall within {CLUSTER_WITHIN:.0%} of (b): {over:+.0%}, {'ok' if over <= CLUSTER_WITHIN else 'MISSED'}")


if __name__ == "__main__":
    main()
