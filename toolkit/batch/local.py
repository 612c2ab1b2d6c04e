"""The local executor: W worker processes, each run in a new kernel forked from one warm template.

Cost model (measured by benchmarks/batch.py): a papermill run pays ~0.7 s of CPU for kernel start-up and
imports before the notebook's own work, and a PDF render pays ~0.4 s to import WeasyPrint.
Pre-starting kernels only hides that wait; on 2 cores the CPU is still spent. Here it is paid
once per batch instead:

- one fork server (template process) imports ipykernel and the heavy modules once and forks a
  fresh kernel per run (copy-on-write) - never a kernel reused between runs;
- W long-lived workers (default: two per CPU, see :func:`default_workers`) import papermill,
  pandas and WeasyPrint once and execute *and render* their members, so nothing is imported on
  the critical path twice.

Workers are not forked from the submitting process, which may already hold threads or zmq
contexts that must not be copied. With fork available they come from multiprocessing's own
``forkserver``: a clean process that imports the workers' modules once and forks each worker
from that state (the W workers pay those imports once, not W times); elsewhere ``spawn``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.forkserver
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from ..errors import ExecutorError
from ..execute.forked_kernels import ForkServer, fork_available, fork_kernel_manager
from ..execute.forkserver import DEFAULT_PRELOAD
from .members import Job, Outcome, execute_job, lost

__all__ = ["LocalExecutor", "WORKER_MODULES", "WORKERS_PER_CPU", "default_workers", "preload_worker_modules", "stop_worker_template"]

_launcher = None  # in a worker: the KernelManager class bound to the fork server


# What every worker needs: the pipeline (papermill, the renderer), records read back as DataFrames
# from Parquet, WeasyPrint. Imported before the first member, never on its critical path.
WORKER_MODULES = ("pandas", "pyarrow.parquet", "weasyprint", "toolkit.runs.pipeline")


# Two workers per CPU: while one worker waits on its kernel (fork, start-up, each cell's round
# trip, the kernel's shutdown) the other renders its member's PDF, so the cores stay busy. On
# 2 cores, -w 4 against -w 2 was faster in all of 9 alternating rounds (median 10.1 s against
# 11.0 s for 16 members) for ~6% more CPU, and in every benchmarks/batch.py run ((b) against
# (b1)). One per CPU, tried for a while, had been chosen from fewer rounds on a busier machine.
WORKERS_PER_CPU = 2


def default_workers() -> int:
    """Worker processes when none are asked for: :data:`WORKERS_PER_CPU` per CPU."""
    return WORKERS_PER_CPU * (os.cpu_count() or 1)


def _pool_context() -> multiprocessing.context.BaseContext:
    if not fork_available():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Once per submitting process; fork_template last (it freezes what the others imported).
    context.set_forkserver_preload([*WORKER_MODULES, __name__, "toolkit.batch.fork_template"])
    return context


def preload_worker_modules() -> None:
    """Import :data:`WORKER_MODULES` (a Dask worker calls this too)."""
    for name in WORKER_MODULES:
        importlib.import_module(name)


def _init_worker(socket_path: str | None) -> None:
    """Pay the worker's imports once, before its first member (free when forked preloaded)."""
    global _launcher
    preload_worker_modules()
    _launcher = fork_kernel_manager(socket_path) if socket_path else None


def _started() -> None:
    """A no-op task: submitting W of them spawns the W workers before any member is queued."""


def _run_job(job: Job) -> Outcome:
    return execute_job(job, launcher=_launcher)


def stop_worker_template() -> None:
    """Stop multiprocessing's fork server with the batch: no process outlives it, and its CPU
    (and its workers') is accounted to this process like any waited-for child. ``_stop`` is
    the standard library's own (test) hook; without it the server exits when we do."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()


class LocalExecutor:
    def __init__(self, workers: int | None = None, preload: list[str] | tuple[str, ...] = ()):
        self.workers = max(1, workers or default_workers())
        self.preload = [m for m in preload if m not in DEFAULT_PRELOAD]
        self.server: ForkServer | None = None

    def start(self) -> LocalExecutor:
        """Nothing to start ahead: the workers and the kernel template start with :meth:`run`."""
        return self

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.request_stop()  # both templates wind down at once, not one after the other
        stop_worker_template()
        if server is not None:
            server.wait_stopped()

    def run(self, jobs: list[Job]) -> Iterator[Outcome]:
        if not jobs:
            return
        starting = self.server is None and fork_available()
        if starting:
            self.server = ForkServer(self.preload).launch()
        socket_path = self.server.socket_path if self.server else None
        workers = min(self.workers, len(jobs))
        with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(),
                                 initializer=_init_worker, initargs=(socket_path,)) as pool:
            # Workers start (and pay their imports) while the kernel fork server pays its own:
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
                        yield lost(job, time.perf_counter() - started, ExecutorError(f"worker lost ({type(exc).__name__}: {exc})"))
