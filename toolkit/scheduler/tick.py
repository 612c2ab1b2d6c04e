"""One scheduled job: execute -> checks -> render -> publish, with retries for transient failures.

:func:`scheduled_tick` is what the job store names (a module-level function with picklable
arguments, the report name and the project root, as persistent job stores require). It reads
the report's spec afresh, so edits to notebooks and specs apply at the next tick.
:func:`run_tick` is the same job with explicit settings: ``nbpress schedule --once`` calls it.

Every attempt is its own run folder (``trigger: schedule``, ``attempt: N``); which failures are
retried is decided in :mod:`.transient`. The owner hears about blocked runs and final failures.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings
from ..batch import members as batch
from ..batch.executors import make_executor
from ..deliver.owner_mail import owner_mailer_from_env
from ..deliver.owner_notice import Mailer
from ..deliver.portal_client import CONFIG_ENV, DEFAULT_CONFIG, TOKEN_ENV, load_publish_config
from ..deliver.run_log import log_run
from ..deliver.run_profile import send_profiles
from ..deliver.run_reports import PortalRuns
from ..errors import DataCheckError, NbpressError
from ..inputs.prepare import prepare
from ..inputs.spec import ReportSpec, find_report
from ..project import Project
from ..runs.finish import AfterRun, finish
from ..runs.pipeline import run_report
from ..runs.run_folder import load_run, new_run_id
from .control import Control, mark_cancelled
from .transient import is_transient

__all__ = ["Settings", "TickResult", "scheduled_tick", "run_tick", "runnable", "publishing", "owner_mail", "install"]

log = logging.getLogger("nbpress.schedule")
CANCEL_REASON = "stopped by a signal before the run finished; its kernel was shut down"


@dataclass
class Settings:
    """What every tick of one daemon shares (never stored in the job store)."""

    control: Control = field(default_factory=Control)
    publish: object | None = None  # a toolkit.deliver.portal_client.PublishConfig, or None: do not publish
    mailer: Mailer | None = None  # None: notification.eml in the run folder
    workers: int | None = None  # batch workers for a grid tick (None: two per CPU)


@dataclass
class TickResult:
    report: str
    status: str  # succeeded | failed | blocked | cancelled | skipped
    runs: list[Path] = field(default_factory=list)  # every attempt's run folder, in order
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


_settings: Settings | None = None


def install(settings: Settings) -> None:
    """Make ``settings`` the ones :func:`scheduled_tick` uses (the daemon calls this at start)."""
    global _settings
    _settings = settings


def scheduled_tick(root: str, report: str) -> None:
    """The job function APScheduler calls at each fire time of REPORT's schedule."""
    if _settings is None:  # a job store run by something other than `nbpress schedule`
        install(Settings(publish=publishing()[0], mailer=owner_mail()[0]))
    result = run_tick(Project(Path(root)), report, _settings)
    level = logging.INFO if result.ok or result.status == "skipped" else logging.WARNING
    log.log(level, "%s: %s%s", report, result.status, f" ({result.message})" if result.message else "")
    _refresh_profile(Project(Path(root)), report, _settings)


def _refresh_profile(project: Project, report: str, settings: Settings) -> None:
    """After a tick the report's next fire times moved on: the portal shows the new ones."""
    if settings.publish is None:
        return
    try:
        send_profiles(PortalRuns(settings.publish, retries=1), [find_report(report, project.notebooks_dir)])
    except NbpressError as exc:  # the warning is the whole story: the run is done
        log.warning("%s: profile not sent to the portal: %s", report, exc)


def publishing() -> tuple[object | None, str]:
    """The portal scheduled runs publish to, or None when none is configured; and a line saying so."""
    configured = settings.get("PUBLISH_TOKEN") or os.environ.get(CONFIG_ENV) or Path(settings.get("PUBLISH_CONFIG")).expanduser().is_file()
    if not configured:
        return None, f"publishing off: no publisher token ({TOKEN_ENV} or {DEFAULT_CONFIG}); PDFs stay in the run folders"
    config = load_publish_config()  # configured but broken: refuse to start (one clear line)
    return config, f"publishing to {config.portal}"


def owner_mail() -> tuple[Mailer | None, str]:
    """How owners hear about runs (SMTP when NBPRESS_MAIL_URL says so), and a line saying so."""
    mailer = owner_mailer_from_env()
    if mailer is None:
        return None, "owner mail: notification.eml in the run folder (set NBPRESS_MAIL_URL to send it by SMTP)"
    return mailer, f"owner mail: by {mailer.describe()}, and notification.eml in the run folder"


def runnable(spec: ReportSpec) -> None:
    """Raise a UsageError (exit 2) when REPORT cannot run with its defaults and grid: a required
    parameter without a value would otherwise fail at every tick, unattended."""
    batch.plan(spec, {}, use_spec_grid=bool(spec.grid))


def run_tick(project: Project, report: str, settings: Settings) -> TickResult:
    """Run REPORT once as the daemon does; never raises for the run's own failures."""
    control = settings.control
    if control.stopping.is_set():  # queued behind --max-runs when the stop came: do not start
        return TickResult(report, "skipped", message="the scheduler is stopping")
    with control.job():
        try:
            spec = find_report(report, project.notebooks_dir)
        except NbpressError as exc:
            return TickResult(report, "failed", message=str(exc))
        if spec.grid:
            return _grid(project, spec, settings)
        return _single(project, spec, settings)


def _delay(spec: ReportSpec, attempt: int) -> float:
    return spec.retries.backoff * 2 ** (attempt - 1)  # exponential: backoff, 2x, 4x ...


def _policy(spec: ReportSpec, settings: Settings) -> AfterRun:
    """Nobody watches a scheduled run: failures go to the owner. The publish client retries a
    portal that is down with the spec's retries and backoff (the PDF is kept, only the upload
    is repeated)."""
    return AfterRun(publish=settings.publish, mailer=settings.mailer, unattended=True,
                    retries=spec.retries.max, backoff=spec.retries.backoff)


def _single(project: Project, spec: ReportSpec, settings: Settings) -> TickResult:
    control, runs, policy = settings.control, [], _policy(spec, settings)
    try:
        prepared = prepare(spec)
    except NbpressError as exc:
        return TickResult(spec.name, "failed", message=str(exc))
    for attempt in range(1, spec.retries.max + 2):
        started = time.perf_counter()
        try:
            run_dir, _ = run_report(prepared, project, trigger="schedule", attempt=attempt, launcher=control.launcher)
        except DataCheckError as exc:
            runs.append(exc.run_dir)
            finish(exc.run_dir, spec, policy)
            return TickResult(spec.name, "blocked", runs, str(exc))
        except NbpressError as exc:
            run_dir = getattr(exc, "run_dir", None)
            runs += [run_dir] if run_dir else []
            if control.cancelled.is_set() and run_dir:
                mark_cancelled(run_dir, CANCEL_REASON)
                log_run(settings.publish, run_dir, spec)
                return TickResult(spec.name, "cancelled", runs, CANCEL_REASON)
            if attempt <= spec.retries.max and is_transient(type(exc).__name__, getattr(exc, "ename", None)):
                delay = _delay(spec, attempt)
                log.warning("%s: attempt %d failed (%s); retrying in %.1f s", spec.name, attempt, exc, delay)
                log_run(settings.publish, run_dir, spec)  # each attempt is a run the owners see
                if control.pause(delay):
                    continue
                log.warning("%s: not retried: the scheduler is stopping", spec.name)
            if run_dir:
                finish(run_dir, spec, policy)  # the last attempt failed: the owner hears of it
            return TickResult(spec.name, "failed", runs, str(exc))
        runs.append(run_dir)
        log.info("%s: attempt %d succeeded in %.1f s: %s", spec.name, attempt, time.perf_counter() - started, run_dir)
        done = finish(run_dir, spec, policy)
        return TickResult(spec.name, done.status, runs, f"publish: {done.error}" if done.error else "")
    raise AssertionError("unreachable: the last attempt returns")


def _grid(project: Project, spec: ReportSpec, settings: Settings) -> TickResult:
    """A tick of a report with a grid runs the whole batch on the local executor."""
    control = settings.control
    try:
        members = batch.plan(spec, {})
    except NbpressError as exc:
        return TickResult(spec.name, "failed", message=str(exc))
    jobs = [batch.Job(i, label, prepared, project.root, trigger="schedule") for i, (label, prepared) in enumerate(members)]
    final: dict[int, batch.Outcome] = {}
    runs: list[Path] = []
    broken = _batch_attempts(jobs, spec, settings, final, runs)
    outcomes = [final[i] for i in sorted(final)]
    if control.cancelled.is_set():  # members stopped by the signal are cancelled, not failed
        for outcome in outcomes:
            if outcome.status == "failed" and outcome.run_dir is not None:
                mark_cancelled(outcome.run_dir, CANCEL_REASON)
                outcome.status = "cancelled"
                log_run(settings.publish, outcome.run_dir, spec)
    batch.after_batch([o for o in outcomes if o.status != "cancelled"], spec, _policy(spec, settings))
    statuses = [o.status for o in outcomes] + (["failed"] if broken else [])
    worst = next((s for s in ("cancelled", "failed", "blocked") if s in statuses), "succeeded")
    summary = f"{statuses.count('succeeded')} of {len(jobs)} members succeeded"
    return TickResult(spec.name, worst, runs, f"{broken}; {summary}" if broken else summary)


def _batch_attempts(jobs: list, spec: ReportSpec, settings: Settings, final: dict, runs: list[Path]) -> str:
    """Run the batch, then again the members that failed transiently; fills ``final`` and
    ``runs``; returns why the executor itself broke down ("" when it did not)."""
    control = settings.control
    try:
        with make_executor(workers=settings.workers, preload=spec.preload) as executor, control.fork_server_of(executor):
            attempt = 1
            while jobs:
                retry = []
                for job, outcome in zip(jobs, batch.run(jobs, executor)):
                    final[outcome.index] = outcome
                    runs += [outcome.run_dir] if outcome.run_dir else []
                    if (outcome.status == "failed" and attempt <= spec.retries.max and not control.cancelled.is_set()
                            and _transient_outcome(outcome)):
                        retry.append(dataclasses.replace(job, attempt=attempt + 1, run_id=new_run_id()))  # a folder of its own
                if not retry:
                    return ""
                delay = _delay(spec, attempt)
                log.warning("%s: %d member(s) failed transiently; retrying in %.1f s", spec.name, len(retry), delay)
                if not control.pause(delay):
                    return ""
                jobs, attempt = retry, attempt + 1
    except NbpressError as exc:  # the executor itself broke down: the members so far still count
        log.error("%s: batch executor: %s", spec.name, exc)
        return f"batch executor: {exc}"
    return ""


def _transient_outcome(outcome) -> bool:
    if outcome.run_dir is not None:
        error = load_run(outcome.run_dir).error
        if error is not None:
            return is_transient(error.type, error.ename)
    return is_transient(outcome.error_type)
