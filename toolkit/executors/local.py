"""The local executor: W worker processes, each run in a new kernel forked from one warm template.

Cost model (see PERFORMANCE.md): a papermill run pays ~0.7 s of CPU for kernel start-up and
imports before the notebook's own work, and a PDF render pays ~0.4 s to import WeasyPrint.
Pre-starting kernels only hides that wait; on 2 cores the CPU is still spent. Here it is paid
once per batch instead:

- one fork server (template process) imports ipykernel and the heavy modules once and forks a
  fresh kernel per run (copy-on-write) - never a kernel reused between runs;
- W long-lived workers (default: CPU count) import papermill, pandas and WeasyPrint once and
  execute *and render* their members, so nothing is imported on the critical path twice.

Workers are started with ``spawn`` (not ``fork``): the submitting process may already hold
threads or zmq contexts that must not be copied.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from ..batch import Job, Outcome, execute_job
from ..errors import ExecutorError
from .forkserver import DEFAULT_PRELOAD
from .kernels import ForkServer, fork_kernel_manager

__all__ = ["LocalExecutor", "fork_available"]

_launcher = None  # in a worker: the KernelManager class bound to the fork server


def fork_available() -> bool:
    return hasattr(os, "fork") and os.path.isdir("/proc") and os.environ.get("NBPRESS_FORK_KERNELS", "1") != "0"


def _init_worker(socket_path: str | None) -> None:
    """Pay the worker's imports once, before its first member."""
    global _launcher
    _launcher = fork_kernel_manager(socket_path) if socket_path else None
    import pandas  # noqa: F401 - records are read back as DataFrames when rendering
    import pyarrow.parquet  # noqa: F401 - records are Parquet
    import weasyprint  # noqa: F401

    from .. import execute, render  # noqa: F401


def _started() -> None:
    """A no-op task: submitting W of them spawns the W workers before any member is queued."""


def _run_job(job: Job) -> Outcome:
    return execute_job(job, launcher=_launcher)


class LocalExecutor:
    def __init__(self, workers: int | None = None, preload: list[str] | tuple[str, ...] = ()):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.preload = [m for m in preload if m not in DEFAULT_PRELOAD]
        self.server: ForkServer | None = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def run(self, jobs: list[Job]) -> Iterator[Outcome]:
        if not jobs:
            return
        starting = self.server is None and fork_available()
        if starting:
            self.server = ForkServer(self.preload).launch()
        socket_path = self.server.socket_path if self.server else None
        context = multiprocessing.get_context("spawn")
        workers = min(self.workers, len(jobs))
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_init_worker, initargs=(socket_path,)) as pool:
            # Workers are spawned (and pay their imports) while the fork server pays its own:
            # on a machine with W cores both start-ups overlap instead of following each other.
            for _ in range(workers):
                pool.submit(_started)
            if starting:
                try:
                    self.server.wait_ready()  # no member runs before kernels can be forked
                except ExecutorError:
                    self.server = None
                    raise
            futures = {pool.submit(_run_job, job): (job, time.perf_counter()) for job in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job, started = futures[future]
                    try:
                        yield future.result()
                    except Exception as exc:  # the worker process itself died
                        error = ExecutorError(f"worker lost ({type(exc).__name__}: {exc})")
                        yield Outcome(job.index, job.label, "failed", time.perf_counter() - started,
                                      error=str(error), error_type=type(error).__name__)
