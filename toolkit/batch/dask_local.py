"""``--cluster local:N``: a Dask LocalCluster on this machine, started while the batch is planned.

A one-machine cluster's start-up sits on the batch's critical path: no member runs before the
scheduler, the workers and the kernel template are up (~2.5 s of 2 CPUs). So that it costs no
more than the local executor's:

- both templates start first, each importing in its own process: the kernel fork server, and
  multiprocessing's fork server that the workers are forked from (distributed, papermill,
  pandas, WeasyPrint imported once);
- this process imports distributed and starts the scheduler and workers in a thread, so the
  caller plans the batch meanwhile (:meth:`LocalClusterStart.begin`, then :meth:`~LocalClusterStart.wait`);
- distributed's own choice of template modules, which would import pandas and numpy in *this*
  process just to list them, is skipped: the template is already running with ours.

The workers share this machine's filesystem, so members write their run folders in place
(:func:`toolkit.batch.dask_cluster.run_member_in_place`) instead of sending them back as bytes.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import threading

from ..errors import ExecutorError
from ..execute.forked_kernels import ForkServer, fork_available
from ..execute.forkserver import DEFAULT_PRELOAD
from .local import WORKERS_PER_CPU, stop_worker_template

__all__ = ["LocalClusterStart"]

# Dask's own monitoring, in the scheduler and every worker, costs CPU the members need (a
# 16-member batch: ~38-47 s of CPU -> ~35 s): no stack profiler every 10 ms, event-loop ticks,
# system and memory samples less often. A worker that dies mid-run fails that member instead of
# killing worker after worker (no retries).
CLUSTER_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    # One member at a time per worker (the executor keeps as many in flight as there are
    # workers, and so does the scheduler's queue): nothing waits on a worker, so there is
    # nothing to steal, and no stealing pass every second.
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.scheduler.work-stealing": False,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    # No HTTP routes (Prometheus metrics, health, info pages) that nobody reads on a one-machine
    # batch: importing prometheus_client cost every worker ~0.15 s of CPU at start.
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
}


def _start_worker_template(modules: list[str]) -> str:
    """Start multiprocessing's fork server now, preloading ``modules`` (the method for the workers)."""
    if not fork_available():
        return "spawn"  # each worker pays its imports (~2 s) where fork is unavailable
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["distributed", *modules, "toolkit.batch.dask_worker_preload"])
    multiprocessing.forkserver.ensure_running()  # its imports overlap this process's own
    return "forkserver"


class LocalClusterStart:
    """The start-up of one LocalCluster for ``cpus`` CPUs, in the background; :meth:`close` undoes it."""

    def __init__(self, cpus: int, *, kernel_preload: list[str], worker_modules: list[str]):
        self.workers = WORKERS_PER_CPU * cpus
        self.kernel_preload = [m for m in kernel_preload if m not in DEFAULT_PRELOAD]
        self.worker_modules = list(worker_modules)
        self.server: ForkServer | None = None
        self.cluster = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def begin(self) -> LocalClusterStart:
        if self._thread is None:
            if fork_available():
                self.server = ForkServer(self.kernel_preload).launch()
            method = _start_worker_template(self.worker_modules)
            self._thread = threading.Thread(target=self._start_cluster, args=(method,), name="nbpress-local-cluster",
                                            daemon=True)
            self._thread.start()
        return self

    def _start_cluster(self, method: str) -> None:
        try:
            import dask
            import distributed.utils
            from distributed import LocalCluster

            distributed.utils._forkserver_preload_set = True  # see the module's docstring
            with dask.config.set({**CLUSTER_CONFIG, "distributed.worker.multiprocessing-method": method}):
                # No dashboard: Bokeh's import and server would cost the batch a second of CPU
                # for a page nobody opens while a one-machine batch runs. The scheduler's HTTP
                # server (no routes, see CLUSTER_CONFIG) still starts: on a free loopback port, not
                # on 8787, where a second batch running at once printed a warning.
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                            silence_logs=logging.ERROR)
        except BaseException as exc:  # raised again in the caller's thread by wait()
            self._error = exc

    def wait(self):
        """The running LocalCluster, once the kernel template serves too (raises what start-up raised)."""
        self.begin()
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self.server is not None:
            try:
                self.server.wait_ready()
            except ExecutorError:
                self.server = None  # wait_ready() stopped it
                raise
        return self.cluster

    @property
    def fork_socket(self) -> str | None:
        return self.server.socket_path if self.server else None

    def close(self) -> None:
        """Stop everything begin() started, even mid-start (an interrupted or refused batch)."""
        if self._thread is not None:
            self._thread.join()  # a LocalCluster half started cannot be closed from here
        cluster, server, self.cluster, self.server = self.cluster, self.server, None, None
        if server is not None:
            server.request_stop()  # the kernel template winds down while the cluster closes
        if cluster is not None:
            cluster.close()
        if self._thread is not None:
            stop_worker_template()
        if server is not None:
            server.wait_stopped()
        self._thread = None
