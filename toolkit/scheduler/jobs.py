"""The job store and the specs: one APScheduler job per scheduled report.

Jobs live in a database (APScheduler's ``SQLAlchemyJobStore``; by default the SQLite file
``runs/.schedule.sqlite``), so a restart keeps each job's next run time, and a fire time missed
while the daemon was down still runs once at start if it is within the spec's
``misfire_grace`` (``coalesce``: however many ticks were missed, one run).

:func:`sync_jobs` makes the store match the specs at start: new schedules are added, changed
ones get their new trigger (and a next run time computed from it), jobs whose spec lost its
schedule are removed; unchanged jobs are left alone, which is what keeps a pending catch-up.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..inputs.spec import ReportSpec, Schedule, load_spec
from ..project import Project

__all__ = ["JOB_FUNC", "TABLE", "default_jobs_url", "project_specs", "scheduled_specs", "make_scheduler", "sync_jobs", "next_fire_times",
           "SyncReport"]

log = logging.getLogger("nbpress.schedule")
JOB_FUNC = "toolkit.scheduler.tick:scheduled_tick"  # by reference: the store keeps the text, not code
TABLE = "nbpress_jobs"


def default_jobs_url(project: Project) -> str:
    return f"sqlite:///{project.runs_dir / '.schedule.sqlite'}"


def project_specs(project: Project) -> list[ReportSpec]:
    """Every spec in notebooks/, by file name (an invalid spec refuses the start: exit 2)."""
    return [load_spec(path) for path in sorted(project.notebooks_dir.glob("*.y*ml")) if path.suffix in {".yml", ".yaml"}]


def scheduled_specs(project: Project) -> list[ReportSpec]:
    """Every spec in notebooks/ that has a schedule (an invalid spec refuses the start: exit 2)."""
    return [spec for spec in project_specs(project) if spec.schedule is not None]


def make_scheduler(jobs_url: str, *, max_runs: int, background: bool = True):
    """An APScheduler 3 scheduler: jobs in ``jobs_url``, at most ``max_runs`` runs at a time.

    Job defaults: one run per tick however many were missed (``coalesce``) and never two runs of
    one report at once (``max_instances=1``); the grace time is set per job from its spec.
    """
    # The job store (APScheduler's schedulers, SQLAlchemy) loads here: `nbpress schedule --list`
    # imports this module and needs the triggers alone.
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from sqlalchemy.exc import ArgumentError

    if jobs_url.startswith("sqlite:///"):
        Path(jobs_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        store = SQLAlchemyJobStore(url=jobs_url, tablename=TABLE)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise UsageError(f"--jobs-db: not a usable database URL ({type(exc).__name__})") from None
    kind = BackgroundScheduler if background else BlockingScheduler
    return kind(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(max_runs)},  # threads: each run's kernel is its own process
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=dt.timezone.utc,
    )


@dataclass
class SyncReport:
    added: list[str]
    updated: list[str]
    removed: list[str]
    kept: list[str]


def _same(job, spec: ReportSpec, root: str) -> tuple[bool, bool]:
    """(trigger unchanged, everything else unchanged)."""
    trigger = spec.schedule.trigger()
    same_trigger = str(job.trigger) == str(trigger) and str(job.trigger.timezone) == str(trigger.timezone)
    same_rest = tuple(job.args) == (root, spec.name) and job.misfire_grace_time == spec.schedule.misfire_grace
    return same_trigger, same_rest


def sync_jobs(scheduler, project: Project, specs: list[ReportSpec]) -> SyncReport:
    """Make the (started, paused) scheduler's job store match ``specs``."""
    root = str(project.root)
    wanted = {spec.name: spec for spec in specs}
    report = SyncReport([], [], [], [])
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
            report.removed.append(job.id)
    for name, spec in wanted.items():
        job = scheduler.get_job(name)
        if job is None:
            scheduler.add_job(JOB_FUNC, trigger=spec.schedule.trigger(), args=[root, name], id=name, name=name,
                              misfire_grace_time=spec.schedule.misfire_grace, coalesce=True, max_instances=1)
            report.added.append(name)
            continue
        same_trigger, same_rest = _same(job, spec, root)
        if not same_rest:
            scheduler.modify_job(name, args=[root, name], misfire_grace_time=spec.schedule.misfire_grace)
        if not same_trigger:
            scheduler.reschedule_job(name, trigger=spec.schedule.trigger())  # next run from the new cron
        (report.kept if same_trigger and same_rest else report.updated).append(name)
    return report


def next_fire_times(schedule: Schedule, count: int, now: dt.datetime | None = None) -> list[dt.datetime]:
    """The next ``count`` fire times after ``now``, in the schedule's time zone (no daemon needed)."""
    trigger = schedule.trigger()
    times: list[dt.datetime] = []
    fire = trigger.get_next_fire_time(None, now or dt.datetime.now(dt.timezone.utc))
    while fire is not None and len(times) < count:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)  # strictly after the previous one
    return times
