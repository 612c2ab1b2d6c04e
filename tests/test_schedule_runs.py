"""Scheduled runs with real kernels: retries only for transient failures, owner e-mails, history.

Runs go through :func:`toolkit.scheduler.tick.run_tick` (what each daemon tick and `schedule --once`
call) or the real `nbpress` script; the owner's mail is the shipped recording mailer or the
``notification.eml`` the default mailer writes.
"""

from __future__ import annotations

import json
from email import message_from_bytes

import yaml

from tests.conftest import cli, make_notebook
from tests.helpers import run_in_pty
from toolkit.deliver.owner_notice import RecordingMailer
from toolkit.runs.run_folder import load_run
from toolkit.scheduler.tick import Settings, run_tick

FAST = {"max": 2, "backoff": 0.05}


def report(project, name: str, code: str, **spec) -> None:
    make_notebook(project.notebooks_dir / f"{name}.ipynb", "n: int = 3", "import toolkit as tk\n" + code)
    spec.setdefault("owner", "owner@example.com")
    spec.setdefault("schedule", {"cron": "0 6 * * *", "timezone": "Europe/Berlin"})
    (project.notebooks_dir / f"{name}.yml").write_text(yaml.safe_dump(spec))


def attempts(project, name: str) -> list:
    records = [load_run(d) for d in (project.runs_dir / name).iterdir()]
    return sorted(records, key=lambda r: r.attempt)


DIES_ONCE = """
import os, pathlib
marker = pathlib.Path("died-once")  # the kernel runs in notebooks/
if not marker.exists():
    marker.write_text("the first attempt's kernel died here")
    os._exit(1)
tk.metric("n", n, label="N")
"""


def test_a_kernel_that_dies_once_is_retried_and_the_second_attempt_succeeds(project):
    report(project, "flaky", DIES_ONCE, retries=FAST)
    mailer = RecordingMailer()
    result = run_tick(project, "flaky", Settings(mailer=mailer))
    assert result.status == "succeeded", result.message
    first, second = attempts(project, "flaky")
    assert (first.attempt, first.status, first.error.type) == (1, "failed", "KernelDiedError")
    assert (second.attempt, second.status) == (2, "succeeded")
    assert {first.trigger, second.trigger} == {"schedule"}
    assert result.runs[-1].joinpath("report.pdf").is_file() and not result.runs[0].joinpath("report.pdf").exists()
    assert mailer.sent == []  # it worked in the end: nobody is bothered


def test_a_notebook_error_is_not_retried_and_the_owner_hears_where_to_look(project):
    report(project, "broken", 'raise ValueError("no rows for this week")', retries=FAST)
    mailer = RecordingMailer()
    result = run_tick(project, "broken", Settings(mailer=mailer))
    assert result.status == "failed"
    [only] = attempts(project, "broken")  # one attempt although two retries were allowed
    assert (only.attempt, only.error.ename, only.error.cell_index) == (1, "ValueError", 1)
    [mail] = mailer.sent
    assert mail.to == "owner@example.com" and "broken failed" in mail.subject
    assert "Failing cell: 1 (ValueError: no rows for this week)" in mail.body
    assert f"Executed notebook: {result.runs[0] / 'executed.ipynb'}" in mail.body
    assert (result.runs[0] / "executed.ipynb").is_file()


def test_an_unreachable_database_is_retried_then_the_owner_is_told(project):
    code = 'import sqlite3\nsqlite3.connect("file:/nonexistent-nbpress/events.sqlite?mode=ro", uri=True)'
    report(project, "nodb", code, retries={"max": 1, "backoff": 0.05})
    mailer = RecordingMailer()
    result = run_tick(project, "nodb", Settings(mailer=mailer))
    assert result.status == "failed"
    records = attempts(project, "nodb")
    assert [(r.attempt, r.status, r.error.ename) for r in records] == [(1, "failed", "OperationalError"),
                                                                       (2, "failed", "OperationalError")]
    [mail] = mailer.sent  # once, about the last attempt
    assert f"attempt 2" in mail.body and str(result.runs[-1]) in mail.body


def test_once_a_blocked_data_check_is_not_retried_and_the_owner_gets_notification_eml(project):
    report(project, "checked", 'tk.metric("n", n, label="N")', retries=FAST, checks=[{"metric": "n", "max": 2}])
    result = cli("schedule", "--once", "checked", cwd=project.root)
    assert result.returncode == 1, result.stderr
    assert "publishing off: no publisher token" in result.stderr  # said once, and nothing published
    assert result.stderr.count("publishing off") == 1
    [run_dir] = (project.runs_dir / "checked").iterdir()
    record = load_run(run_dir)
    assert (record.status, record.attempt, record.trigger) == ("blocked", 1, "schedule")
    mail = message_from_bytes((run_dir / "notification.eml").read_bytes())
    assert mail["To"] == "owner@example.com" and "blocked by data checks" in mail["Subject"]
    assert "metric n" in mail.get_payload() and not (run_dir / "report.pdf").exists()
    assert result.stdout.strip().splitlines()[-1].startswith("checked: blocked")


def test_once_succeeds_and_runs_lists_the_history_newest_first(project):
    report(project, "fine", 'tk.metric("n", n, label="N")')
    assert cli("schedule", "--once", "fine", cwd=project.root).returncode == 0
    assert cli("run", "fine", "-p", "n=5", cwd=project.root).returncode == 0
    lines = cli("runs", cwd=project.root, check=True).stdout.strip().splitlines()
    assert lines[0].split("\t") == ["started", "report", "status", "duration", "trigger", "parameters",
                                    "publication", "run"]
    newest, oldest = (line.split("\t") for line in lines[1:])
    assert newest[1:3] == ["fine", "succeeded"] and newest[4:6] == ["manual #1", "n=5"]
    assert oldest[4:6] == ["schedule #1", "n=3"] and oldest[3].endswith(" s") and newest[0] >= oldest[0]
    rows = json.loads(cli("runs", "fine", "--limit", "1", "--json", cwd=project.root, check=True).stdout)
    assert [(r["trigger"], r["parameters"], r["status"]) for r in rows] == [("manual", {"n": 5}, "succeeded")]
    missing = cli("runs", "nothing", cwd=project.root)
    assert missing.returncode == 2 and missing.stderr.strip() == f"nbpress: error: no runs of 'nothing' in {project.runs_dir}"


def test_list_shows_next_fire_times_in_the_specs_time_zone_and_bad_input_is_exit_2(project):
    report(project, "tokyo", "x = 1", schedule={"cron": "30 9 * * *", "timezone": "Asia/Tokyo"})
    report(project, "nyc", "x = 1", schedule={"cron": "0 7 * * MON", "timezone": "America/New_York"})
    lines = cli("schedule", "--list", "--count", "2", cwd=project.root, check=True).stdout.strip().splitlines()
    assert len(lines) == 2
    nyc, tokyo = lines
    assert nyc.startswith("nyc  cron '0 7 * * MON'  America/New_York  next: ")
    assert tokyo.startswith("tokyo  cron '30 9 * * *'  Asia/Tokyo  next: ")
    times = tokyo.split("next: ")[1].split(", ")
    assert len(times) == 2 and all(t.endswith("09:30 +0900 (JST)") for t in times)
    assert all(t.endswith(("07:00 -0500 (EST)", "07:00 -0400 (EDT)")) for t in nyc.split("next: ")[1].split(", "))
    result = cli("schedule", "--once", "nosuch", cwd=project.root)
    assert result.returncode == 2 and "no report named 'nosuch'" in result.stderr
    result = cli("schedule", "--list", "--once", "tokyo", cwd=project.root)
    assert result.returncode == 2 and result.stderr.strip() == "nbpress: error: --list, --once and --status do not go together"
    (project.notebooks_dir / "bad.yml").write_text(yaml.safe_dump({"schedule": {"cron": "61 * * * *"}}))
    result = cli("schedule", "--list", cwd=project.root)
    assert result.returncode == 2 and "bad.yml: schedule" in result.stderr and len(result.stderr.splitlines()) == 1


def fake_run(project, report_name: str, minutes_ago: int, **fields):
    """A finished run folder as the pipeline leaves it (no kernel needed to read history)."""
    import datetime as dt

    from toolkit.runs.run_folder import RunRecord, create_run_dir, new_run_id, save_run

    started = dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)
    run_id = new_run_id(started)
    record = RunRecord(report=report_name, run_id=run_id, spec={}, notebook="n.ipynb", notebook_sha256="0" * 64,
                       started=started, finished=started + dt.timedelta(seconds=12.5), **fields)
    save_run(create_run_dir(project.runs_dir, report_name, run_id), record)


def test_runs_is_a_table_on_a_terminal_and_lines_in_a_pipe(project):
    import os
    import sys
    from pathlib import Path

    from toolkit.runs.run_folder import PublicationRef

    fake_run(project, "weekly", 60, status="succeeded", parameters={"region": "[north]"}, trigger="schedule", attempt=2,
             publication=PublicationRef(id="p1", version=3, portal="https://portal", url="https://portal/d/p1"))
    fake_run(project, "daily", 30, status="cancelled", parameters={}, trigger="schedule")
    fake_run(project, "weekly", 90, status="failed", parameters={"region": "south"})
    (project.runs_dir / "weekly" / "broken").mkdir()
    (project.runs_dir / "weekly" / "broken" / "run.json").write_text("{not json")
    piped = cli("runs", cwd=project.root, check=True)
    rows = [line.split("\t") for line in piped.stdout.strip().splitlines()[1:]]
    assert [(r[1], r[2], r[4]) for r in rows] == [("daily", "cancelled", "schedule #1"),
                                                 ("weekly", "succeeded", "schedule #2"), ("weekly", "failed", "manual #1")]
    assert rows[1][0] == "2026-11-23 04:00:00Z" and rows[1][3] == "12.5 s" and rows[1][6] == "v3 https://portal/d/p1 (id p1)"
    assert "skipped" in piped.stderr and "broken" in piped.stderr and "unreadable" in piped.stderr

    exe = Path(sys.executable).with_name("nbpress")
    env = {**{k: v for k, v in os.environ.items() if k != "CI"}, "COLUMNS": "200"}
    status, output = run_in_pty([str(exe), "runs", "weekly", "--limit", "1"], cwd=project.root, env=env)  # stdout is a terminal
    assert status == 0
    assert "Runs, newest first" in output and "┃" in output  # a rich table (heavy header borders)
    assert "region=[north]" in output  # brackets shown as written, not taken for markup
    assert "v3 https://portal/d/p1" in output and "south" not in output  # --limit 1
