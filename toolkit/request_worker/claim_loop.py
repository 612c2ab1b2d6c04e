"""The worker's life: profiles to the portal, then claim -> run -> report, until a signal.

At start every report it serves (each spec in notebooks/, or the ones named) sends its profile,
so the portal can offer its form. Then it asks for the next queued request for those reports
every ``poll`` seconds, and runs one at a time (the kernel is its own process; run more workers
for more at once: the portal never gives one request to two of them).

SIGTERM/SIGINT: no new claim; the running request's kernel is stopped and the request finished
``failed`` + transient, so the portal queues it for another worker; exit 0. A second signal
interrupts at once (the lease then lapses and the portal queues the request again).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..deliver.owner_notice import Mailer
from ..deliver.portal_client import PublishConfig
from ..deliver.run_profile import send_profiles
from ..deliver.run_reports import PortalRuns
from ..errors import PublishError, UsageError
from ..inputs.prepare import read_inputs
from ..inputs.spec import ReportSpec, find_report
from ..notebook.run_env import RUN_ENV
from ..project import Project
from ..scheduler.control import Control
from ..scheduler.jobs import project_specs
from .served_request import Served, Worker, serve_request

__all__ = ["serve_requests", "served_specs", "worker_values", "worker_name"]

log = logging.getLogger("nbpress.worker")
FATAL = {401, 403, 404}  # the token is unknown or may not claim, or the portal has no run requests: no use polling


def worker_name() -> str:
    """``host:pid``: how the portal tells workers apart (at most 64 printable characters)."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}"


def served_specs(project: Project, reports: tuple[str, ...]) -> list[ReportSpec]:
    """The named reports, or every spec in notebooks/ (an invalid one refuses the start)."""
    if reports:
        return [find_report(name, project.notebooks_dir) for name in dict.fromkeys(reports)]
    return project_specs(project)


def worker_values(specs: list[ReportSpec], assignments: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``-p NAME=VALUE``, typed per report that has NAME (e.g. the database a request may not choose).

    A name no served report has is refused, and so is a Secret's (its value comes from the environment)."""
    values: dict[str, dict[str, Any]] = {spec.name: {} for spec in specs}
    for assignment in assignments:
        name = assignment.partition("=")[0].strip()
        takers = [spec for spec in specs if name in read_inputs(spec).schema.names]
        if not takers:
            raise UsageError(f"-p {name}: no report served here has this parameter")
        for spec in takers:
            values[spec.name].update(read_inputs(spec).given(None, [assignment]))
    return values


class _Signals:
    """Stop taking requests; cancel the running one's kernel. A second signal interrupts."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.running: Control | None = None

    def __call__(self, signum: int, frame) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        running = self.running
        log.warning("%s: stopping%s", signal.Signals(signum).name, "; cancelling the running request" if running else "")
        if running is not None:
            running.cancel()

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        previous = {s: signal.signal(s, self) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def serve_requests(project: Project, config: PublishConfig, specs: list[ReportSpec], *, once: bool, poll: float,
                   values: dict[str, dict[str, Any]] | None = None, mailer: Mailer | None = None,
                   say: Callable[[str], None] = log.info, portal: PortalRuns | None = None) -> int:
    """Serve run requests for ``specs`` until a signal (``once``: at most one); the exit status.
    ``values``: report -> the worker's ``-p`` values (:func:`worker_values`); ``portal``: the
    endpoints of ``config.portal`` (made here when not given)."""
    portal = portal or PortalRuns(config)
    names = [spec.name for spec in specs]
    worker = Worker(project, portal, config, worker_name(), mailer, values or {})
    unsent = send_profiles(portal, specs, worker.values)
    say(f"worker {worker.name}: serving {', '.join(names) or 'no report'} for {portal.base} "
        f"({len(specs) - len(unsent)} of {len(specs)} profiles sent); polling every {poll:g} s")
    os.environ.setdefault(RUN_ENV, "requested")  # as the scheduler does: set once for every run's kernel
    with _Signals().installed() as signals:
        while not signals.stop.is_set():
            try:
                request = portal.claim(worker.name, names)
            except PublishError as exc:
                if exc.status in FATAL:
                    raise
                log.warning("no claim: %s; trying again in %g s", exc, poll)
                signals.stop.wait(poll)
                continue
            if unsent:  # the portal answers again: the profiles it missed at start
                unsent = send_profiles(portal, unsent, worker.values)
            if request is None:
                if once:
                    say("no request queued")
                    return 0
                signals.stop.wait(poll)
                continue
            served = _serve(worker, request, signals, say)
            if once:  # a signal is a clean stop (the request went back to the queue), not a failure
                return 0 if served.status in {"succeeded", "stopped"} else 1
    say("stopped")
    return 0


def _serve(worker: Worker, request, signals: _Signals, say: Callable[[str], None]) -> Served:
    by = f", asked by {request.requested_by}" if request.requested_by else ""
    say(f"request {request.id}: {request.report} (attempt {request.attempt}{by})")
    control = Control()
    signals.running = control
    try:
        if signals.stop.is_set():  # the signal came during the claim: do not start the kernel
            control.cancel()
        served = serve_request(worker, request, control)
    finally:
        signals.running = None
    say(f"request {request.id}: {served.status}" + (f": {served.message}" if served.message else ""))
    return served
