"""The real daemon as a subprocess: restarts keep the job store, SIGTERM stops cleanly.

No test waits for a real cron minute: a tick is made due by putting the job's next run time in
the past in the job store (as if the daemon had been down), which APScheduler then catches up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from tests.conftest import cli, make_notebook
from tests.helpers import open_job_store, pid_alive, wait_for
from toolkit.execute.forked_kernels import fork_available
from toolkit.runs.run_folder import load_run
from toolkit.scheduler.jobs import scheduled_specs, sync_jobs

DAILY = {"cron": "0 6 * * *", "timezone": "Europe/Berlin", "misfire_grace": 3 * 86400}


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_daemon_left_behind():
    """A failed assertion must not leave a daemon (and its kernels) running after the test."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # its own orderly stop shuts its kernels down
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Daemon:
    """`nbpress schedule` in its own process, its log read line by line."""

    def __init__(self, project, url: str, *args: str):
        exe = Path(sys.executable).with_name("nbpress")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_PUBLISH")}
        self.process = subprocess.Popen([str(exe), "schedule", "--jobs-db", url, *args], cwd=project.root, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _started.append(self.process)
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}; log so far:\n" + "\n".join(self.lines))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code


def store_url(project) -> str:
    return f"sqlite:///{project.runs_dir / 'jobs.sqlite'}"


def open_store(project):
    """The daemon's job store opened as the daemon opens it, but never firing a job (no loop, paused)."""
    return open_job_store(store_url(project))


def stored_next(project, report: str, *, move_to: dt.datetime | None = None) -> dt.datetime:
    """The job's next run time as the store holds it (optionally moved first: "the daemon was down")."""
    scheduler = open_store(project)
    try:
        if move_to is not None:
            scheduler.modify_job(report, next_run_time=move_to)
        return scheduler.get_job(report).next_run_time
    finally:
        scheduler.shutdown()


def seed_store(project) -> None:
    """The store as a daemon leaves it after its first start."""
    scheduler = open_store(project)
    sync_jobs(scheduler, project, scheduled_specs(project))
    scheduler.shutdown()


def report(project, name: str, code: str) -> None:
    make_notebook(project.notebooks_dir / f"{name}.ipynb", "n: int = 3", "import toolkit as tk\n" + code)
    (project.notebooks_dir / f"{name}.yml").write_text(yaml.safe_dump({"schedule": DAILY}))


def test_a_restart_keeps_the_jobs_and_runs_the_missed_ticks_once_within_max_runs(project, proof):
    proof.case("faults", "scheduler restarted across missed ticks",
               "the persisted jobs survive, a missed tick within the grace runs once (coalesced), within --max-runs")
    report(project, "tiny", 'tk.metric("n", n, label="N")')
    report(project, "other", 'tk.metric("n", n, label="N")')
    report(project, "last", 'tk.metric("n", n, label="N")')  # the marker that the catch-up is over (below)
    daemon = Daemon(project, store_url(project))
    assert "added last, other, tiny" in daemon.wait_for("jobs in sqlite:")
    daemon.wait_for("waiting for ticks")
    assert daemon.stop() == 0
    upcoming = stored_next(project, "tiny")
    assert upcoming > dt.datetime.now(dt.timezone.utc)

    daemon = Daemon(project, store_url(project))
    assert "added none, updated none, removed none" in daemon.wait_for("jobs in sqlite:")
    daemon.wait_for("waiting for ticks")
    assert daemon.stop() == 0
    assert stored_next(project, "tiny") == upcoming  # the restart did not reset it
    assert not project.runs_dir.joinpath("tiny").exists()  # and nothing ran

    for name in ("tiny", "other"):  # down over three fire times
        stored_next(project, name, move_to=upcoming - dt.timedelta(days=3))
    stored_next(project, "last", move_to=upcoming - dt.timedelta(days=1))  # one missed fire time, the latest
    daemon = Daemon(project, store_url(project), "--max-runs", "1")
    # Due jobs are taken in next-run-time order and --max-runs 1 is one thread taking them first
    # in, first out: when "last" has run, every run of tiny and other (a wrong second one too) is over.
    daemon.wait_for("last: succeeded", timeout=180)
    assert daemon.stop() == 0
    records = []
    for name in ("tiny", "other", "last"):
        [run_dir] = (project.runs_dir / name).iterdir()  # coalesced: one run for three missed ticks
        records.append(load_run(run_dir))
        assert (records[-1].status, records[-1].trigger, records[-1].attempt) == ("succeeded", "schedule", 1)
        assert stored_next(project, name) == upcoming  # the next tick is the regular one again
    first, second, third = sorted(records, key=lambda r: r.started)
    assert first.finished <= second.started and second.finished <= third.started  # --max-runs 1: one after the other
    assert third.report == "last"


SLOW = """
import os, pathlib, time
pathlib.Path("kernel.pid").write_text(str(os.getpid()))
time.sleep({seconds})
tk.metric("n", n, label="N")
"""


@pytest.mark.parametrize("seconds, grace, status", [(120, 1, "cancelled"), (3, 60, "succeeded")])
def test_sigterm_during_a_run_finishes_or_cancels_it_cleanly_and_exits_0(project, seconds, grace, status, proof):
    proof.case("faults", f"SIGTERM to the scheduler mid-run (grace {grace} s)",
               f"the daemon exits 0, the run ends {status} with a valid notebook, the kernel is gone, no half-written file")
    report(project, "slow", SLOW.format(seconds=seconds))
    seed_store(project)
    upcoming = stored_next(project, "slow", move_to=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    daemon = Daemon(project, store_url(project), "--grace", str(grace))
    pid_file = project.notebooks_dir / "kernel.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=90, what="the slow cell started",
             process=daemon.process)
    kernel = int(pid_file.read_text())
    started = time.monotonic()
    assert daemon.stop(timeout=90) == 0
    log = "\n".join(daemon.lines)
    assert "SIGTERM: stopping (no new runs)" in log and "stopped" in log
    assert f"waiting up to {grace} s for 1 running job(s)" in log  # the signal came mid-run
    [run_dir] = (project.runs_dir / "slow").iterdir()
    record = load_run(run_dir)
    assert record.status == status, log
    assert not pid_alive(kernel)  # the kernel was shut down either way
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []  # no half-written file
    nbformat.validate(nbformat.read(str(run_dir / "executed.ipynb"), as_version=4))
    if status == "cancelled":
        assert record.error.type == "RunCancelledError" and record.error.stage == "execute"
        assert "cancelling 1 running job(s)" in log and time.monotonic() - started < 30
        assert not (run_dir / "report.pdf").exists()
    else:
        assert (run_dir / "report.pdf").is_file() and "cancelling" not in log
    assert stored_next(project, "slow") > dt.datetime.now(dt.timezone.utc)  # the job is still there for the next start
    assert upcoming < dt.datetime.now(dt.timezone.utc)
    assert json.loads((run_dir / "run.json").read_text())["status"] == status


def test_the_daemon_refuses_to_start_when_a_scheduled_report_cannot_run(project):
    make_notebook(project.notebooks_dir / "needy.ipynb", "week: str", "x = week")  # required, no default
    (project.notebooks_dir / "needy.yml").write_text(yaml.safe_dump({"schedule": DAILY}))
    result = cli("schedule", "--jobs-db", store_url(project), cwd=project.root)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "parameter 'week'" in result.stderr
    assert not project.runs_dir.exists()  # refused before the job store was made
    result = cli("schedule", "--once", "needy", cwd=project.root)
    assert result.returncode == 2 and "parameter 'week'" in result.stderr and not project.runs_dir.exists()


SLOW_GRID = """
import os, pathlib, time
pathlib.Path(f"kernel-{region}.pid").write_text(str(os.getpid()))
time.sleep(120)
"""


@pytest.mark.skipif(not fork_available(), reason="cancelling a grid stops its kernel fork server")
def test_sigterm_cancels_a_grid_tick_whose_kernels_were_forked_by_the_batch_executor(project, proof):
    proof.case("faults", "SIGTERM to the scheduler mid-batch",
               "every member of the running grid is marked cancelled and none of its kernels is left running")
    make_notebook(project.notebooks_dir / "slowgrid.ipynb", "region: str = 'a'", SLOW_GRID)
    (project.notebooks_dir / "slowgrid.yml").write_text(yaml.safe_dump({"schedule": DAILY, "grid": {"region": ["a", "b"]}}))
    seed_store(project)
    stored_next(project, "slowgrid", move_to=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    daemon = Daemon(project, store_url(project), "--grace", "0")
    pid_files = [project.notebooks_dir / f"kernel-{r}.pid" for r in "ab"]
    wait_for(lambda: all(p.exists() and p.read_text() for p in pid_files), timeout=120, what="both members started",
             process=daemon.process)
    kernels = [int(p.read_text()) for p in pid_files]
    assert daemon.stop(timeout=90) == 0
    records = [load_run(d) for d in (project.runs_dir / "slowgrid").iterdir()]
    assert sorted((r.parameters["region"], r.status) for r in records) == [("a", "cancelled"), ("b", "cancelled")]
    assert not any(pid_alive(pid) for pid in kernels)


def test_a_job_store_that_cannot_be_used_is_one_line_without_its_password(project):
    report(project, "tiny", "x = 1")
    result = cli("schedule", "--jobs-db", "postgresql+psycopg://nbpress:hunter2@127.0.0.1:1/jobs", cwd=project.root)
    assert result.returncode == 1 and "hunter2" not in result.stderr
    assert result.stderr.strip() == ("nbpress: error: job store postgresql+psycopg://nbpress:***@127.0.0.1:1/jobs "
                                     "cannot be opened (OperationalError)")
    result = cli("schedule", "--jobs-db", "not a url", cwd=project.root)
    assert result.returncode == 2 and result.stderr.strip() == "nbpress: error: --jobs-db: not a usable database URL (ArgumentError)"


def test_sigterm_to_once_cancels_its_run_cleanly(project):
    report(project, "slow", SLOW.format(seconds=120))
    exe = Path(sys.executable).with_name("nbpress")
    process = subprocess.Popen([str(exe), "schedule", "--once", "slow"], cwd=project.root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _started.append(process)
    pid_file = project.notebooks_dir / "kernel.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=90, what="the slow cell started", process=process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert out.strip().splitlines()[-1] == "slow: cancelled (stopped by a signal before the run finished; its kernel was shut down)"
    [run_dir] = (project.runs_dir / "slow").iterdir()
    assert load_run(run_dir).status == "cancelled" and not pid_alive(int(pid_file.read_text()))
