"""`nbpress runs prune`: dry run first, then --yes; older-than and keep-N per report; a running run
and an unreadable folder are never removed; `nbpress runs [REPORT]` still lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.conftest import cli
from toolkit.runs.run_folder import RunRecord, create_run_dir, save_run

NOW = dt.datetime.now(dt.timezone.utc)


def make_run(runs_dir: Path, report: str, days_ago: int, status: str = "succeeded") -> Path:
    started = NOW - dt.timedelta(days=days_ago)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{days_ago:08x}"
    run_dir = create_run_dir(runs_dir, report, run_id)
    save_run(run_dir, RunRecord(report=report, run_id=run_id, status=status, parameters={}, spec={}, notebook="n.ipynb",
                                notebook_sha256="0" * 64, started=started,
                                finished=None if status == "running" else started + dt.timedelta(seconds=5)))
    (run_dir / "report.pdf").write_bytes(b"%PDF-1.7\n%%EOF\n")
    return run_dir


def test_prune_lists_first_then_removes_old_runs_keeping_the_newest_and_running_ones(tmp_path):
    runs = tmp_path / "runs"
    weekly = {days: make_run(runs, "weekly", days) for days in (40, 30, 20, 1)}
    running = make_run(runs, "weekly", 50, status="running")
    failed = make_run(runs, "weekly", 45, status="failed")
    monthly = make_run(runs, "monthly", 100)
    damaged = runs / "weekly" / "20200101T000000Z-deadbeef"
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")

    nothing = cli("runs", "prune", cwd=tmp_path)
    assert nothing.returncode == 2 and "--older-than DAYS, --keep N" in nothing.stderr

    dry = cli("runs", "prune", "--older-than", "25", "--keep", "1", cwd=tmp_path, check=True)
    for gone in (weekly[40], weekly[30], failed):
        assert f"would remove weekly {gone.name}" in dry.stdout
    assert "would remove 3 run folders; run again with --yes" in dry.stdout
    assert running.name not in dry.stdout and monthly.name not in dry.stdout and "skipped" in dry.stderr
    assert all(p.is_dir() for p in (*weekly.values(), failed))  # a dry run removes nothing

    done = cli("runs", "prune", "--older-than", "25", "--keep", "1", "--yes", cwd=tmp_path, check=True)
    assert "removed 3 run folders" in done.stdout
    assert not weekly[40].exists() and not weekly[30].exists() and not failed.exists()
    assert weekly[20].is_dir() and weekly[1].is_dir() and monthly.is_dir() and running.is_dir() and damaged.is_dir()

    # The listing is unchanged by the subcommand: all of it, and of one report.
    assert len(cli("runs", cwd=tmp_path, check=True).stdout.splitlines()) == 1 + 4
    assert len(cli("runs", "monthly", cwd=tmp_path, check=True).stdout.splitlines()) == 1 + 1

    everything = cli("runs", "prune", "--keep", "0", "--yes", cwd=tmp_path, check=True)
    assert "removed 3 run folders" in everything.stdout
    assert running.is_dir() and damaged.is_dir()  # never: a live run, or a folder we cannot read
    assert sorted(p.name for p in (runs / "weekly").iterdir()) == sorted([running.name, damaged.name])
