"""``nbpress schedule``: run every spec's schedule until SIGTERM or SIGINT.

APScheduler's BackgroundScheduler fires the jobs on a pool of ``--max-runs`` threads (each run's
kernel is its own process). Several daemons may share one job store: only the one holding the
lease (:mod:`.leadership`) syncs the jobs and fires them, the others wait paused and take over
when it is gone. The main thread waits for a stop signal and checks the lease's deadline.
On SIGTERM/SIGINT:

1. no new ticks are taken (the scheduler shuts down; ticks queued behind ``--max-runs`` skip);
2. running jobs get ``--grace`` seconds to finish (no new attempts or retries start);
3. then what still runs is cancelled: kernels shut down, ``run.json`` says ``cancelled``;
4. the lease is released (a follower takes over at once); exit 0. The job store keeps every
   next run time for the next start.

With publishing configured, each scheduled report's profile (schedule in words, next fire
times, parameter form) goes to the portal at start (:mod:`toolkit.deliver.run_profile`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .. import settings
from ..errors import NbpressError, SchedulerError
from ..notebook.run_env import RUN_ENV
from ..project import Project
from .control import Control
from .jobs import make_scheduler, scheduled_specs, sync_jobs
from .lease import Lease
from .leadership import Leadership
from .tick import Settings, install, owner_mail, publishing, runnable

__all__ = ["serve", "CANCEL_WAIT"]

log = logging.getLogger("nbpress.schedule")
CANCEL_WAIT = 60.0  # seconds for cancelled runs to write their run.json after their kernels died


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def serve(project: Project, *, jobs_url: str, max_runs: int, grace: float) -> int:
    """Run the daemon in this (main) thread; returns the exit status."""
    lease_seconds = settings.get("SCHEDULE_LEASE_SECONDS")  # a bad value refuses the start at once
    specs = scheduled_specs(project)  # an invalid spec refuses the start, before any signal handler
    for spec in specs:
        runnable(spec)
    config, publish_line = publishing()
    mailer, mail_line = owner_mail()
    control = Control()
    install(Settings(control=control, publish=config, mailer=mailer))
    # papermill marks each kernel as an nbpress run through this variable, set and restored around
    # each launch; with runs in parallel threads one run's restore must not unset it for another.
    os.environ.setdefault(RUN_ENV, "scheduled")

    stop = threading.Event()

    def on_signal(signum: int, frame) -> None:
        if not stop.is_set():
            log.warning("%s: stopping (no new runs)", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler = make_scheduler(jobs_url, max_runs=max_runs)
    leadership = None
    try:
        _open(scheduler, jobs_url)
        leadership = _lead(scheduler, project, specs, jobs_url, lease_seconds)
        log.info(publish_line)
        log.info(mail_line)
        if config is not None:
            _send_profiles(config, specs)
        log.info("waiting for ticks (at most %d runs at a time; SIGTERM or Ctrl-C stops)", max_runs)
        while not stop.wait(0.5):
            leadership.check()
        control.stop()  # before the shutdown: a tick still queued must see it and skip
        leadership.retire()  # pauses the scheduler; the lease is kept while running jobs drain
        scheduler.shutdown(wait=False)
        return _drain(control, grace)
    finally:
        if leadership is not None:
            leadership.stop()  # pauses the scheduler if it still fires, then releases the lease
        if scheduler.running:
            scheduler.shutdown(wait=False)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _lead(scheduler, project: Project, specs, jobs_url: str, lease_seconds: int) -> Leadership:
    """Take the lease or follow its holder; the leader syncs the jobs and its scheduler fires."""

    def on_lead() -> None:
        changes = sync_jobs(scheduler, project, specs)
        log.info("jobs in %s: %d scheduled (added %s, updated %s, removed %s)", _describe(jobs_url), len(specs),
                 _names(changes.added), _names(changes.updated), _names(changes.removed))
        for job in scheduler.get_jobs():
            spec = next(s for s in specs if s.name == job.id)
            local = job.next_run_time.astimezone(spec.schedule.trigger().timezone) if job.next_run_time else None
            log.info("%s: cron '%s' %s, next run %s", job.id, spec.schedule.cron, spec.schedule.timezone,
                     local.isoformat() if local else "none")
        if not specs:
            log.warning("no report in %s has a schedule: nothing to run until a restart", project.notebooks_dir)
        scheduler.resume()

    lease = Lease(jobs_url, lease_seconds)
    leadership = Leadership(lease, on_lead=on_lead, on_follow=lambda reason: scheduler.pause())
    try:
        lease.create()
        leadership.step()  # the first look in this thread: a lone daemon leads before "waiting for ticks"
    except SQLAlchemyError as exc:
        lease.close()
        raise SchedulerError(f"job store {_describe(jobs_url)}: the schedule lease cannot be used ({type(exc).__name__})") from None
    leadership.start()
    return leadership


def _send_profiles(config, specs) -> None:
    """The portal shows each report's schedule and next fire times; a portal that is down costs a warning."""
    from ..deliver.run_profile import send_profiles
    from ..deliver.run_reports import PortalRuns

    try:
        unsent = send_profiles(PortalRuns(config, retries=1), specs)
    except NbpressError as exc:
        log.warning("profiles not sent to the portal: %s", exc)
        return
    log.info("profiles of %d of %d scheduled reports sent to the portal", len(specs) - len(unsent), len(specs))


def _open(scheduler, jobs_url: str) -> None:
    """Start paused: the store is open (its table made), nothing fires before the sync."""
    try:
        scheduler.start(paused=True)
    except SQLAlchemyError as exc:  # the driver's message may quote the URL: name the class only
        raise SchedulerError(f"job store {_describe(jobs_url)} cannot be opened ({type(exc).__name__})") from None


def _drain(control: Control, grace: float) -> int:
    if control.active:
        log.warning("waiting up to %.0f s for %d running job(s) to finish", grace, control.active)
    if not control.wait_idle(grace):
        log.warning("grace period over: cancelling %d running job(s)", control.active)
        control.cancel()
        if not control.wait_idle(CANCEL_WAIT):
            log.error("%d job(s) did not stop within %.0f s of the cancel", control.active, CANCEL_WAIT)
            return 1
    log.info("stopped")
    return 0


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"
