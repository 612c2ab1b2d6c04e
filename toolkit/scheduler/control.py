"""Stopping scheduled runs: what the daemon tells running jobs, and how kernels are shut down.

A :class:`Control` is shared by the daemon and its job threads. On SIGTERM the daemon calls
:meth:`Control.stop`: no job starts a new attempt or retry from then on. If runs are still going
when the grace period ends it calls :meth:`Control.cancel`: every kernel a scheduled run started
is killed (its process group, so the notebook's children go too) and every batch fork server is
stopped (it kills its kernels). The runs then fail inside papermill, which still writes the
executed notebook, and the job rewrites their ``run.json`` as ``cancelled``
(:func:`mark_cancelled`): never left ``running``, never half-written (``run.json`` is replaced
atomically).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..execute.papermill_run import IpcKernelManager
from ..runs.run_folder import FailureRecord, load_run, save_run

__all__ = ["Control", "mark_cancelled"]

log = logging.getLogger("nbpress.schedule")


class Control:
    """Stop and cancel signals plus the kernels and fork servers of the runs in flight."""

    def __init__(self) -> None:
        self.stopping = threading.Event()  # no new attempts, no retries
        self.cancelled = threading.Event()  # kill what still runs
        self._lock = threading.Condition()
        self._active = 0
        self._kernels: set[Any] = set()
        self._servers: set[Any] = set()
        control = self

        class KernelManager(IpcKernelManager):
            """A kernel that the daemon can shut down from another thread."""

            async def start_kernel(self, **kw: Any) -> None:
                await super().start_kernel(**kw)
                with control._lock:
                    control._kernels.add(self)
                if control.cancelled.is_set():  # started in the instant after a cancel
                    control._kill(self)

            async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
                try:
                    await super().shutdown_kernel(now=now, restart=restart)
                finally:
                    with control._lock:
                        control._kernels.discard(self)

        self.launcher = KernelManager

    # --- jobs in flight -------------------------------------------------------------------

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._lock.notify_all()

    @property
    def active(self) -> int:
        with self._lock:
            return self._active

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs (True) or ``timeout`` seconds passed (False)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._active == 0, timeout)

    @contextlib.contextmanager
    def fork_server_of(self, executor: Any) -> Iterator[None]:
        """Let :meth:`cancel` stop this batch executor's fork server (and so its kernels)."""
        with self._lock:
            self._servers.add(executor)
        try:
            yield
        finally:
            with self._lock:
                self._servers.discard(executor)

    def pause(self, seconds: float) -> bool:
        """Sleep before a retry; False when the daemon is stopping (do not retry)."""
        return not self.stopping.wait(seconds)

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    def cancel(self) -> None:
        self.stopping.set()
        self.cancelled.set()
        with self._lock:
            kernels, servers = list(self._kernels), list(self._servers)
        for km in kernels:
            self._kill(km)
        for executor in servers:
            process = getattr(getattr(executor, "server", None), "process", None)
            if process is not None and process.poll() is None:
                # Only the signal: the fork server kills the kernels it forked and exits; the
                # batch's own thread still tears the executor down (no two threads in stop()).
                process.send_signal(signal.SIGTERM)

    @contextlib.contextmanager
    def cancel_on_signals(self, echo) -> Iterator[None]:
        """For a run in the foreground (``--once``): SIGTERM/SIGINT cancel it cleanly, as the
        daemon does after its grace period; a second signal interrupts at once."""

        def on_signal(signum: int, frame) -> None:
            if self.cancelled.is_set():
                raise KeyboardInterrupt
            echo(f"{signal.Signals(signum).name}: cancelling the run")
            self.cancel()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @staticmethod
    def _kill(km: Any) -> None:
        provisioner = getattr(km, "provisioner", None)
        pid, pgid = getattr(provisioner, "pid", None), getattr(provisioner, "pgid", None)
        try:
            if pgid and pgid != os.getpgrp():  # never our own group: that would kill the daemon
                os.killpg(pgid, signal.SIGKILL)
            elif pid:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        log.warning("cancelled: killed kernel %s", pid)


def mark_cancelled(run_dir: Path, reason: str) -> None:
    """Record that a run failed because it was cancelled, keeping where it stopped."""
    record = load_run(run_dir)
    if record.status not in ("running", "failed"):  # it finished (or was blocked) after all
        return
    before = record.error
    record.status = "cancelled"
    record.finished = record.finished or dt.datetime.now(dt.timezone.utc)
    record.error = FailureRecord(stage=before.stage if before else "execute", type="RunCancelledError", message=reason,
                            cell_index=before.cell_index if before else None)
    save_run(run_dir, record)
