"""Which of several daemons on one job store fires jobs, and when it must stop.

A thread keeps the lease (:mod:`.lease`): the leader renews it every third of the lease; a
follower looks at the row every second and takes the lease over once its renewal counter has
not moved for a whole lease (or at once when the leader released it on an orderly stop).

The timing that keeps two daemons from firing the same tick, with ``L`` the lease:

- a leader may fire until ``2/3 L`` after it *started* its last successful renewal; the daemon's
  main thread checks that deadline every half second (:meth:`Leadership.check`), so a renewal
  stuck on an unreachable database cannot keep it firing;
- a follower takes over only ``L`` after it *saw* the last change, which it can only see after
  that renewal was written: the old leader has stopped ``L/3`` (5 s at 15 s) before.

A killed leader is replaced within about ``L`` plus two looks (the lease plus 2 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from .lease import Lease, LeaseRow

__all__ = ["Leadership", "FOLLOWER_LOOK"]

log = logging.getLogger("nbpress.schedule")
FOLLOWER_LOOK = 1.0  # seconds between a follower's looks at the lease row


class Leadership:
    def __init__(self, lease: Lease, *, on_lead: Callable[[], None], on_follow: Callable[[str], None]):
        self.lease = lease
        self.renew_every = lease.seconds / 3
        self.look_every = min(FOLLOWER_LOOK, self.renew_every)
        self.on_lead, self.on_follow = on_lead, on_follow
        self.leading = False
        self._fire_until = 0.0  # monotonic: the leader fires only before this
        self._seen: tuple[str, int] | None = None  # the row's (token, renewals) as last seen, and when
        self._seen_at = 0.0
        self._shown: str | None = None  # the leader last named in the log
        self._failing = False
        self._retiring = threading.Event()  # stopping: renew what we hold, never take the lease
        self._halt = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._loop, name="nbpress-schedule-lease", daemon=True)

    # --- the daemon's side ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def check(self) -> None:
        """Stop firing once the last renewal is too old (called by the main thread, never blocks on the database)."""
        with self._lock:
            if self.leading and time.monotonic() >= self._fire_until:
                self._demote("the lease could not be renewed in time: not firing until it is")

    def retire(self) -> None:
        """Stopping: fire nothing more, keep the lease while running jobs drain (no one else starts them again)."""
        self._retiring.set()
        with self._lock:
            if self.leading:
                self.leading = False
                self.on_follow("stopping")

    def stop(self) -> None:
        """End the thread and give the lease up, so that a follower takes over at its next look."""
        self.retire()
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(self.lease.seconds)
        try:
            self.lease.release()
        except SQLAlchemyError as exc:
            log.warning("could not release the schedule lease (%s); a follower takes over when it runs out",
                        type(exc).__name__)
        self.lease.close()

    # --- the lease thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                self.step()
                if self._failing:
                    log.info("the job store's database answers again")
                self._failing = False
            except SQLAlchemyError as exc:  # unreachable, locked: check() stops the firing in time
                if not self._failing:
                    log.warning("schedule lease: the database does not answer (%s)", type(exc).__name__)
                self._failing = True
            except Exception:  # e.g. the leader's job sync failed: log it, keep the lease thread alive
                log.exception("schedule lease: unexpected error; trying again")
            self._halt.wait(self.renew_every if self.lease.renewals >= 0 else self.look_every)

    def step(self) -> None:
        """One renewal (when we hold the lease) or one look at it (when we follow)."""
        started = time.monotonic()
        if self.lease.renewals >= 0:
            if self.lease.renew():
                self._leading_until(started)
                return
            with self._lock:
                self._demote("lost the schedule lease")
        if self._retiring.is_set():
            return
        row = self.lease.read()
        if row is None or row.free or (row.key == self._seen and time.monotonic() - self._seen_at >= self.lease.seconds):
            if self.lease.acquire(row):
                self._leading_until(started)
                return
            row = self.lease.read()  # another daemon was faster
        if row is not None and row.key != self._seen:
            self._seen, self._seen_at = row.key, time.monotonic()  # after the read: never earlier than the write
        self._show(row)

    def _leading_until(self, started: float) -> None:
        with self._lock:
            self._fire_until = started + 2 * self.renew_every
            if not self.leading and not self._retiring.is_set():
                self.on_lead()  # raises: not leading yet; the next renewal tries again
                self.leading = True
                self._shown = None
                log.info("leading the schedule as %s (lease %g s)", self.lease.owner, self.lease.seconds)

    def _demote(self, reason: str) -> None:
        if self.leading:
            self.leading = False
            log.warning("%s", reason)
            self.on_follow(reason)

    def _show(self, row: LeaseRow | None) -> None:
        if row is not None and not row.free and row.owner != self._shown:
            self._shown = row.owner
            log.info("waiting: schedule led by %s until %s", row.owner, row.until())
