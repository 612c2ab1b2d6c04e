"""Keeping a claimed request's lease: progress calls every third of the lease, and at each stage.

One thread per request sends ``POST /api/v1/run-requests/<id>/progress`` with the current stage;
the answer renews the lease and may say ``cancel``. A cancel, or a 409 ``lease_lost`` (the
portal gave the request to another worker or ended it), stops the run's kernel through the
request's :class:`~toolkit.scheduler.control.Control`, as SIGTERM does for the scheduler. A
portal that does not answer costs a warning line; the next beat tries again (the lease is
three beats long).
"""

from __future__ import annotations

import logging
import threading

from ..deliver.run_reports import ClaimedRequest, PortalRuns
from ..errors import LeaseLostError, PublishError
from ..scheduler.control import Control

__all__ = ["LeaseKeeper"]

log = logging.getLogger("nbpress.worker")
MIN_BEAT = 0.5  # seconds: a portal answering a tiny lease must not make this a busy loop


class LeaseKeeper:
    """The heartbeat of one request (a context manager: the thread runs inside it)."""

    def __init__(self, portal: PortalRuns, request: ClaimedRequest, worker: str, control: Control):
        self.portal, self.request, self.worker, self.control = portal, request, worker, control
        self.stage = "claimed"
        self.cancel_asked = threading.Event()  # the requester cancelled it on the portal
        self.lost = threading.Event()  # the portal no longer counts it as ours
        self.interval = max(MIN_BEAT, request.lease_seconds / 3)
        self._wake, self._done = threading.Event(), threading.Event()
        self._send_lock = threading.Lock()  # beats and checkpoints go out one at a time, in order
        self._thread = threading.Thread(target=self._beat, name=f"lease {request.id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join(timeout=self.portal.timeout + 15)

    @property
    def stopped(self) -> bool:
        """The run must not go on: cancelled on the portal, or no longer ours."""
        return self.cancel_asked.is_set() or self.lost.is_set()

    def enter(self, stage: str) -> None:
        """The run reached ``stage``: the portal hears of it now rather than at the next beat."""
        if stage != self.stage:
            self.stage = stage
            self._wake.set()

    def checkpoint(self, stage: str) -> bool:
        """Tell the portal ``stage`` and wait for its answer; False when the run must stop."""
        self.stage = stage
        self._send()
        return not self.stopped

    def _beat(self) -> None:
        while not self._done.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._done.is_set() or self.stopped:
                return
            self._send()

    def _send(self) -> None:
        with self._send_lock:
            if self.stopped:
                return
            try:
                answer = self.portal.progress(self.request.id, self.worker, self.stage)
            except LeaseLostError:
                log.warning("request %s: the portal gave it to another worker or ended it; stopping its run", self.request.id)
                self.lost.set()
                self.control.cancel()
                return
            except PublishError as exc:
                log.warning("request %s: progress not sent (%s); trying again in %.0f s", self.request.id, exc, self.interval)
                return
            self.interval = max(MIN_BEAT, answer.lease_seconds / 3)
            if answer.cancel:
                log.warning("request %s: cancelled on the portal; stopping its run", self.request.id)
                self.cancel_asked.set()
                self.control.cancel()
