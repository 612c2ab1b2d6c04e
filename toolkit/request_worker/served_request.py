"""One claimed run request: its values checked again, the normal pipeline, the outcome to the portal.

The portal checked the values with the toolkit's rules; they are checked here once more with the
toolkit's own :class:`~toolkit.inputs.params.Schema` (over the spec's defaults), and a value it
refuses ends the request ``failed`` with the toolkit's message; so does a parameter the profile's
form does not offer (:mod:`toolkit.inputs.settable`). Then the run goes as a scheduled
one does: execute -> checks -> render -> publish (same metadata), owner mail for blocked and
failed runs (:func:`toolkit.runs.finish.finish`, unattended), its log line to the portal.

The portal hears each stage, and the outcome:

- ``succeeded`` with the publication id;
- ``failed`` with the one-line error and whether trying again could help
  (:func:`toolkit.scheduler.transient.is_transient`; an upload the portal did not take counts
  as transient, a refused one does not);
- ``cancelled`` when the requester cancelled it (the kernel was stopped on the next progress answer);
- ``failed`` + transient when this worker was stopped by a signal: the portal queues it again;
- nothing when the portal said ``lease_lost``: the request is someone else's now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..deliver.owner_notice import Mailer
from ..deliver.portal_client import PublishConfig
from ..deliver.run_log import log_run, one_line
from ..deliver.run_profile import form_names
from ..deliver.run_reports import ClaimedRequest, PortalRuns
from ..errors import DataCheckError, NbpressError, ParameterError, PublishError
from ..inputs.prepare import read_inputs
from ..inputs.spec import ReportSpec, find_report
from ..progress import run_progress
from ..project import Project
from ..runs.finish import AfterRun, finish
from ..runs.pipeline import run_report
from ..runs.run_folder import FailureRecord, load_run, save_run
from ..scheduler.control import Control, mark_cancelled
from ..scheduler.transient import is_transient
from .lease_keeper import LeaseKeeper

__all__ = ["Served", "serve_request", "STOPPED_REASON", "CANCELLED_REASON", "LOST_REASON"]

log = logging.getLogger("nbpress.worker")
CANCELLED_REASON = "cancelled on the portal; its kernel was shut down"
STOPPED_REASON = "the worker was stopped before the run finished; the portal queues the request again"
LOST_REASON = "the portal gave this request to another worker or ended it"
# The pipeline's stages, as the portal shows them.
STAGES = {"execute": "execute", "checks": "check", "records": "render", "html": "render", "pdf": "render"}


@dataclass(frozen=True)
class Served:
    status: str  # succeeded | failed | failed-transient | cancelled | stopped (a signal) | lost
    message: str = ""
    run_dir: Path | None = None
    publication: str | None = None


@dataclass(frozen=True)
class Worker:
    """What every request of one ``nbpress worker`` shares."""

    project: Project
    portal: PortalRuns
    config: PublishConfig
    name: str  # "host:pid", as the portal knows this worker
    mailer: Mailer | None = None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # report -> the worker's -p values


def serve_request(worker: Worker, request: ClaimedRequest, control: Control) -> Served:
    """Run ``request`` and tell the portal how it ended; ``control`` lets a signal stop its kernel."""
    with LeaseKeeper(worker.portal, request, worker.name, control) as keeper:
        served = _run(worker, request, control, keeper)
    if served.status == "lost" or keeper.lost.is_set():  # the keeper said so: one line is enough
        return Served("lost", LOST_REASON, served.run_dir)
    _tell_portal(worker, request, served)
    return served


def _run(worker: Worker, request: ClaimedRequest, control: Control, keeper: LeaseKeeper) -> Served:
    try:
        spec = find_report(request.report, worker.project.notebooks_dir)
        inputs = read_inputs(spec)
        _only_the_form(request.parameters, inputs.schema, spec)
        # the toolkit's own check of the portal's values, over the worker's -p and the spec's defaults
        prepared = inputs.prepare({**worker.values.get(spec.name, {}), **request.parameters})
    except NbpressError as exc:
        return Served("failed", str(exc))
    policy = AfterRun(publish=worker.config, mailer=worker.mailer, unattended=True, retries=spec.retries.max,
                      backoff=spec.retries.backoff, request_id=request.id)
    with run_progress(f"{spec.name} ({request.id})") as live:
        def progress(stage: str, detail: str) -> None:
            if live:
                live(stage, detail)
            if (shown := STAGES.get(stage)) and shown != keeper.stage:
                log.info("request %s: %s", request.id, shown)
                keeper.enter(shown)

        try:
            run_dir, _record = run_report(prepared, worker.project, trigger="request", attempt=request.attempt,
                                          launcher=control.launcher, progress=progress)
        except DataCheckError as exc:  # blocked: the owner hears of it, the requester gets the checks
            finish(exc.run_dir, spec, policy)
            return Served("failed", str(exc), exc.run_dir)
        except NbpressError as exc:
            return _failed(worker, spec, policy, keeper, control, exc)
        except Exception as exc:  # a surprise (run.json has it): this request fails, the worker goes on
            log.exception("request %s: unexpected error", request.id)
            first = (str(exc).splitlines() or [""])[0]
            return Served("failed", f"unexpected {type(exc).__name__}: {first}", getattr(exc, "run_dir", None))
    if control.cancelled.is_set() or not keeper.checkpoint("publish"):  # nothing goes out for a stopped request
        return _stopped(worker, spec, keeper, run_dir)
    log.info("request %s: publish", request.id)
    done = finish(run_dir, spec, policy)
    if done.published is not None:
        return Served("succeeded", done.published.link, run_dir, done.published.id)
    error = done.error or PublishError("the run was not published")
    transient = error.status is None or error.status >= 500 or error.status == 429
    return Served("failed", str(error), run_dir) if not transient else Served("failed-transient", str(error), run_dir)


def _only_the_form(given: dict, schema, spec: ReportSpec) -> None:
    """A request sets only what the profile's form offers (never a Secret, by default no location)."""
    offered = form_names(spec, schema)
    for name in given:
        if name in schema.names and name not in offered:  # an unknown name gets the schema's own message
            raise ParameterError(name, None, "", problem="cannot be set from the portal (it keeps the spec's or the worker's value)")


def _failed(worker: Worker, spec: ReportSpec, policy: AfterRun, keeper: LeaseKeeper, control: Control,
            exc: NbpressError) -> Served:
    run_dir = getattr(exc, "run_dir", None)
    if control.cancelled.is_set():  # the kernel was stopped on purpose: not the notebook's fault
        return _stopped(worker, spec, keeper, run_dir)
    if run_dir is not None:
        finish(run_dir, spec, policy)  # the owner hears of it, the log goes to the portal
    if is_transient(type(exc).__name__, getattr(exc, "ename", None)):
        return Served("failed-transient", str(exc), run_dir)
    return Served("failed", str(exc), run_dir)


def _stopped(worker: Worker, spec: ReportSpec, keeper: LeaseKeeper, run_dir: Path | None) -> Served:
    """Cancelled on the portal, lost to another worker, or this worker was stopped by a signal."""
    status, reason = ("lost", LOST_REASON) if keeper.lost.is_set() else (
        ("cancelled", CANCELLED_REASON) if keeper.cancel_asked.is_set() else ("stopped", STOPPED_REASON))
    if run_dir is not None:
        _mark_cancelled(run_dir, reason)
        log_run(worker.config, run_dir, spec, request_id=keeper.request.id)
    return Served(status, reason, run_dir)


def _mark_cancelled(run_dir: Path, reason: str) -> None:
    """``run.json`` says cancelled, also for a run that rendered but was stopped before its upload."""
    record = load_run(run_dir)
    if record.status == "succeeded":
        record.status = "cancelled"
        record.error = FailureRecord(stage="publish", type="RunCancelledError", message=reason)
        save_run(run_dir, record)
        return
    mark_cancelled(run_dir, reason)


def _tell_portal(worker: Worker, request: ClaimedRequest, served: Served) -> None:
    run_id = served.run_dir.name if served.run_dir is not None else None
    fields = {"run_id": run_id}
    if served.status == "succeeded":
        status, fields["publication"] = "succeeded", served.publication
    elif served.status == "cancelled":
        status = "cancelled"
    else:
        status = "failed"
        fields["error_line"] = one_line(served.message)
        fields["transient"] = served.status in {"stopped", "failed-transient"}
    try:
        final = worker.portal.finish(request.id, worker.name, status, **fields)
    except PublishError as exc:  # the lease lapses and the portal's sweep decides
        log.warning("request %s: the outcome (%s) did not reach the portal: %s", request.id, status, exc)
        return
    log.info("request %s: %s%s", request.id, final, f" ({fields['error_line']})" if "error_line" in fields else "")
