"""Schedule logic with a controllable clock: the daemon's own scheduler and SQLite job store, no waiting.

APScheduler 3 reads the time with ``datetime.now`` in two places (the scheduler's loop, which
picks due jobs and coalesces their missed fire times, and the executor's ``run_job``, which
drops fire times past their misfire grace). Both read the frozen clock here; the scheduler's
loop is stepped by hand (:func:`step`) instead of by a thread that sleeps.
"""

from __future__ import annotations

import datetime as dt
import types

import apscheduler.executors.base as executors_base
import apscheduler.schedulers.base as schedulers_base
import pytest
import yaml
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.executors.base import BaseExecutor, run_job

from tests.conftest import make_notebook
from tests.helpers import open_job_store
from toolkit.inputs.spec import Schedule
from toolkit.scheduler.jobs import JOB_FUNC, next_fire_times, scheduled_specs, sync_jobs

UTC = dt.timezone.utc


class Clock:
    now = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return Clock.now.astimezone(tz) if tz else Clock.now.replace(tzinfo=None)


class RecordingExecutor(BaseExecutor):
    """Runs APScheduler's real ``run_job`` (misfire rule included) with the job call recorded."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []
        self.missed: list[dt.datetime] = []

    def _do_submit_job(self, job, run_times):
        stand_in = types.SimpleNamespace(id=job.id, misfire_grace_time=job.misfire_grace_time, args=job.args,
                                         kwargs=job.kwargs, func=lambda *args: self.calls.append((args, run_times)))
        events = run_job(stand_in, job._jobstore_alias, run_times, self._logger.name)
        self.missed += [e.scheduled_run_time for e in events if e.code == EVENT_JOB_MISSED]
        self._run_job_success(job.id, events)


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr(schedulers_base, "datetime", FrozenDatetime)
    monkeypatch.setattr(executors_base, "datetime", FrozenDatetime)
    Clock.now = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def write_spec(project, name: str, **schedule) -> None:
    if not (project.notebooks_dir / f"{name}.ipynb").exists():
        make_notebook(project.notebooks_dir / f"{name}.ipynb", "n: int = 1", "x = n")
    body = {"schedule": schedule} if schedule else {}
    (project.notebooks_dir / f"{name}.yml").write_text(yaml.safe_dump(body))


def daemon_start(project, store_url):
    """What `nbpress schedule` does at start (toolkit.scheduler.daemon.serve): the daemon's scheduler
    and store opened paused, synced with the specs, resumed. Its executor records the job calls."""
    executor = RecordingExecutor()
    scheduler = open_job_store(store_url, executor=executor)
    changes = sync_jobs(scheduler, project, scheduled_specs(project))
    scheduler.resume()
    return scheduler, executor, changes


def step(scheduler) -> None:
    """One pass of APScheduler's loop: due jobs are submitted, missed fire times coalesced."""
    scheduler._process_jobs()


def test_a_missed_tick_within_the_grace_runs_once_after_downtime(project, tmp_path):
    write_spec(project, "daily", cron="0 6 * * *", timezone="Europe/Berlin", misfire_grace=3 * 86400)
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    scheduler, executor, changes = daemon_start(project, url)
    assert changes.added == ["daily"]
    first = scheduler.get_job("daily").next_run_time
    assert first == dt.datetime(2026, 11, 21, 5, 0, tzinfo=UTC)  # 06:00 in Berlin (CET, UTC+1)
    step(scheduler)
    assert executor.calls == []  # not due yet
    scheduler.shutdown()

    Clock.now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # down for three fire times (21st, 22nd, 23rd)
    scheduler, executor, changes = daemon_start(project, url)
    assert changes.kept == ["daily"] and scheduler.get_job("daily").next_run_time == first  # survived the restart
    step(scheduler)
    assert len(executor.calls) == 1  # coalesced: one run for three missed ticks
    args, run_times = executor.calls[0]
    assert args == (str(project.root), "daily")
    assert run_times == [dt.datetime(2026, 11, 23, 5, 0, tzinfo=UTC)]  # the latest missed fire time
    assert scheduler.get_job("daily").next_run_time == dt.datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    step(scheduler)
    assert len(executor.calls) == 1  # and not again
    scheduler.shutdown()


def test_a_tick_missed_by_more_than_the_grace_is_skipped(project, tmp_path):
    write_spec(project, "daily", cron="0 6 * * *", timezone="Europe/Berlin", misfire_grace=3600)
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    scheduler, _, _ = daemon_start(project, url)
    scheduler.shutdown()
    Clock.now = dt.datetime(2026, 11, 23, 5, 59, tzinfo=UTC)  # 59 minutes late: still runs
    scheduler, executor, _ = daemon_start(project, url)
    step(scheduler)
    assert len(executor.calls) == 1 and executor.missed == []
    scheduler.shutdown()
    Clock.now = dt.datetime(2026, 11, 24, 7, 1, tzinfo=UTC)  # 2 h 1 min late: past the hour of grace
    scheduler, executor, _ = daemon_start(project, url)
    step(scheduler)
    assert executor.calls == [] and executor.missed == [dt.datetime(2026, 11, 24, 5, 0, tzinfo=UTC)]
    assert scheduler.get_job("daily").next_run_time == dt.datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    scheduler.shutdown()


def test_sync_adds_updates_and_removes_jobs_to_match_the_specs(project, tmp_path):
    write_spec(project, "alpha", cron="0 6 * * *")
    write_spec(project, "beta", cron="30 7 * * MON", timezone="America/New_York")
    write_spec(project, "gamma")  # no schedule: no job
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    scheduler, _, changes = daemon_start(project, url)
    assert sorted(changes.added) == ["alpha", "beta"] and sorted(j.id for j in scheduler.get_jobs()) == ["alpha", "beta"]
    job = scheduler.get_job("beta")
    assert job.func_ref == JOB_FUNC and job.coalesce is True and job.max_instances == 1
    assert job.next_run_time == dt.datetime(2026, 11, 23, 12, 30, tzinfo=UTC)  # Monday 07:30 EST
    alpha_next = scheduler.get_job("alpha").next_run_time
    scheduler.shutdown()

    write_spec(project, "alpha", cron="0 6 * * *")  # unchanged
    write_spec(project, "beta", cron="0 9 * * *", timezone="America/New_York", misfire_grace=60)  # new cron
    write_spec(project, "gamma", cron="15 * * * *")  # gained a schedule
    (project.notebooks_dir / "alpha.yml").write_text(yaml.safe_dump({"title": "Alpha"}))  # lost it
    scheduler, _, changes = daemon_start(project, url)
    assert (changes.added, changes.updated, changes.removed) == (["gamma"], ["beta"], ["alpha"])
    beta = scheduler.get_job("beta")
    assert beta.next_run_time == dt.datetime(2026, 11, 20, 14, 0, tzinfo=UTC) and beta.misfire_grace_time == 60
    assert scheduler.get_job("alpha") is None and alpha_next is not None
    scheduler.shutdown()


def test_next_fire_times_follow_the_time_zone_across_a_dst_change():
    schedule = Schedule(cron="0 6 * * MON", timezone="Europe/Berlin")
    times = next_fire_times(schedule, 3, dt.datetime(2026, 10, 15, tzinfo=UTC))
    assert [t.isoformat() for t in times] == [
        "2026-10-19T06:00:00+02:00",  # summer time
        "2026-10-26T06:00:00+01:00",  # the clocks went back on the 25th: still 06:00 local
        "2026-11-02T06:00:00+01:00",
    ]
    assert [t.astimezone(UTC).hour for t in times] == [4, 5, 5]
