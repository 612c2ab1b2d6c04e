"""The Dask executor: batch members run on a dask.distributed cluster; from an existing one, run folders come back as bytes.

``--cluster tcp://HOST:PORT`` connects to an existing scheduler (``tls://HOST:PORT``: over TLS with
the certificates of :mod:`.dask_tls`); ``--cluster local:N`` starts a LocalCluster for N CPUs
of this machine: like the local executor, two worker processes per CPU (one thread each), forked
from one template that imported the pipeline once. Same interface as the
local executor: a context manager whose ``run(jobs)`` yields an :class:`Outcome` per member as
it finishes.

On an existing cluster no shared filesystem is assumed: the submitting side packs the notebook's
folder and ``templates/`` once per batch (:mod:`.bundle`) and scatters it; a worker unpacks it
into its own scratch folder, executes *and renders* the member there (a fresh kernel per run,
forked from a fork server living in that worker process), then sends the whole run folder back
as a tarball. The submitting side unpacks it under its runs folder, so publishing and owner
notices (:func:`toolkit.batch.members.after_batch`) work as for local batches. On ``local:N``
(:mod:`.dask_local`) the workers share this machine: each member writes its run folder in place,
as the local executor's workers do, with kernels forked from one fork server for all workers.

A member that fails on a worker comes back like any failed run (partial notebook and
``run.json`` included). A worker that dies mid-run surfaces as a failed member; on a
LocalCluster the scheduler is told not to retry such a task on another worker
(``allowed-failures: 0``), on an existing cluster its own setting applies.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import ClusterUnreachableError, ExecutorError, UsageError
from ..execute.forked_kernels import ForkServer, fork_available, fork_kernel_manager
from ..execute.forkserver import DEFAULT_PRELOAD
from ..project import Project
from ..runs.run_folder import load_run, save_run
from .bundle import ProjectBundle, pack_project, pack_run, unpack_project, unpack_run
from .dask_local import LocalClusterStart
from .dask_tls import tls_files
from .local import WORKER_MODULES, preload_worker_modules
from .members import Job, Outcome, execute_job, lost

# dask and distributed (~1 s to import) load only when a cluster is used: the CLI imports this
# module to check a --cluster value before anything runs.

__all__ = ["ClusterTarget", "DaskExecutor", "parse_cluster", "run_member", "run_member_in_place"]

KEEP_PROJECTS = 8  # unpacked project bundles a worker keeps for the next batches
CONNECT_TIMEOUT = 5.0  # seconds: an unreachable scheduler is reported, not waited for
WORKER_WAIT = 30.0  # seconds for a reachable scheduler to have at least one worker
_REMOTE = re.compile(r"^(?:tcp|tls)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})/?$")
_LOCAL = re.compile(r"^local:(?P<n>\d{1,3})$")


@dataclasses.dataclass(frozen=True)
class ClusterTarget:
    """Where to run: an existing scheduler's address, or a LocalCluster for ``workers`` CPUs."""

    address: str | None = None
    workers: int | None = None

    def __str__(self) -> str:
        return self.address or f"local:{self.workers}"


def parse_cluster(value: str) -> ClusterTarget:
    """``tcp://HOST:PORT``, ``tls://HOST:PORT`` or ``local:N``; anything else is a :class:`UsageError` (exit 2)."""
    text = value.strip()
    if match := _LOCAL.match(text):
        workers = int(match["n"])
        if not 1 <= workers <= 256:
            raise UsageError(f"--cluster {value!r}: N in local:N must be between 1 and 256")
        return ClusterTarget(workers=workers)
    if match := _REMOTE.match(text):
        if not 1 <= int(match["port"]) <= 65535:
            raise UsageError(f"--cluster {value!r}: port must be between 1 and 65535")
        return ClusterTarget(address=text.rstrip("/"))
    raise UsageError(f"--cluster {value!r}: expected tcp://HOST:PORT or tls://HOST:PORT (a running Dask scheduler) or local:N")


# --- on the worker --------------------------------------------------------------------------

# One member at a time per worker process: execute() marks the kernel's environment through
# os.environ, which threads would share. Start workers with `--nthreads 1` (see docs/scale-out.md).
_worker_lock = threading.Lock()
_projects: dict[str, Path] = {}  # bundle sha256 -> unpacked project root (once per worker)
_servers: dict[tuple[str, ...], object] = {}  # spec preload -> this worker's kernel fork server


def _scratch() -> Path:
    """The worker's own scratch folder (never the submitting side's paths)."""
    try:
        from distributed import get_worker

        return Path(get_worker().local_directory)
    except ValueError:  # called outside a worker (tests of this function alone)
        return Path(tempfile.gettempdir())


def _project_root(bundle: ProjectBundle) -> Path:
    """The bundle unpacked in this worker (called under the member lock, so no member of this
    worker is using any project while old ones are removed)."""
    root = _projects.pop(bundle.sha256, None)
    if root is None or not root.is_dir():
        root = unpack_project(bundle, Path(tempfile.mkdtemp(prefix="nbpress-project-", dir=_scratch())))
    _projects[bundle.sha256] = root  # most recently used last
    while len(_projects) > KEEP_PROJECTS:  # long-lived workers serve many batches
        shutil.rmtree(_projects.pop(next(iter(_projects))), ignore_errors=True)
    return root


def _launcher(preload: list[str]):
    """A kernel manager class forking kernels from this worker's fork server (None: cold kernels)."""
    if not fork_available():
        return None
    key = tuple(m for m in preload if m not in DEFAULT_PRELOAD)
    server = _servers.get(key)
    if server is None or server.process is None or server.process.poll() is not None:
        server = ForkServer(list(key)).launch()
        preload_worker_modules()  # papermill, records, WeasyPrint: this worker's imports overlap the fork server's
        _servers[key] = server = server.wait_ready()
    return fork_kernel_manager(server.socket_path)


def stop_fork_servers() -> int:
    """Stop this worker's fork servers (run on every worker when a batch ends).

    Not under the member lock: this runs on the worker's event loop, which must not wait for a
    member still running after an interrupted batch (that member's kernel dies with its server).
    """
    servers = list(_servers.values())
    _servers.clear()
    for server in servers:
        server.stop()
    return len(servers)


def run_member(job: Job, bundle: ProjectBundle) -> tuple[Outcome, bytes | None]:
    """Execute and render one member in this worker's scratch folder; return the outcome and
    the run folder as a tarball (None when no folder was made)."""
    with _worker_lock:
        root = _project_root(bundle)
        spec = job.prepared.spec
        local_spec = spec.model_copy(update={"notebook": root / "notebooks" / spec.notebook.name})
        out_dir = Path(tempfile.mkdtemp(prefix="nbpress-runs-", dir=_scratch()))
        local_job = dataclasses.replace(job, prepared=dataclasses.replace(job.prepared, spec=local_spec),
                                        root=root, out_dir=out_dir)
        try:
            outcome = execute_job(local_job, launcher=_launcher(spec.preload))
            data = pack_run(outcome.run_dir) if outcome.run_dir else None
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)  # the submitting side keeps the only copy
    outcome.extra.update(worker_pid=os.getpid(), worker_dir=str(out_dir))
    return outcome, data


def run_member_in_place(job: Job, fork_socket: str | None) -> Outcome:
    """``local:N``: execute and render one member straight into its run folder on this machine's
    disk, as a local executor's worker does (no tarball to pack, send and unpack). ``fork_socket``:
    the kernel fork server all workers share (None where fork is unavailable: cold kernels)."""
    with _worker_lock:
        outcome = execute_job(job, launcher=fork_kernel_manager(fork_socket) if fork_socket else None)
    outcome.extra.update(worker_pid=os.getpid())
    return outcome


# --- on the submitting side -----------------------------------------------------------------


def _receive(job: Job, outcome: Outcome, data: bytes | None) -> Outcome:
    """Write the returned run folder under this side's runs folder and point the outcome at it."""
    if data is None:
        outcome.run_dir = None
        return outcome
    spec = job.prepared.spec
    report_dir = (job.out_dir or Project(job.root).runs_dir) / spec.name
    try:
        run_dir = unpack_run(data, report_dir)
        record = load_run(run_dir)
        record.notebook = str(spec.notebook)  # where the notebook lives, not the worker's copy
        save_run(run_dir, record)
    except (OSError, ExecutorError) as exc:
        outcome.status, outcome.run_dir = "failed", None
        outcome.error, outcome.error_type = f"run folder not received: {exc}", type(exc).__name__
        return outcome
    outcome.run_dir = run_dir
    return outcome


def _lost(exc: BaseException) -> ExecutorError:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return ExecutorError("the Dask worker died while running this member")
    first = (str(exc).splitlines() or [""])[0]
    return ExecutorError(f"the Dask cluster could not run this member ({type(exc).__name__}: {first})")


def _unreachable(address: str, timeout: float, exc: BaseException) -> str:
    """One line: the scheduler did not answer, or (tls://) the TLS handshake failed and which side refused."""
    text = str(exc)
    if address.startswith("tls://") and isinstance(exc, ValueError):
        # Tornado, when a plain-TCP peer has already written before the handshake could start.
        return (f"TLS handshake with the Dask scheduler at {address} failed: "
                "the other side closed the connection (a tcp:// scheduler, or not a Dask scheduler?)")
    if address.startswith("tls://") and type(exc).__name__.endswith("CommClosedError"):  # closed mid-handshake
        if "does not match" in text:
            why = "the scheduler's certificate is not signed by the CA in NBPRESS_DASK_TLS_CA"
        elif "EOF" in text or "ALERT" in text:
            why = "the scheduler refused this client's certificate (NBPRESS_DASK_TLS_CERT)"
        else:
            why = "the other side closed the connection (a tcp:// scheduler, or not a Dask scheduler?)"
        return f"TLS handshake with the Dask scheduler at {address} failed: {why}"
    return (f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__});"
            f" is `dask scheduler` running there?")


class DaskExecutor:
    def __init__(self, cluster: str | ClusterTarget, *, preload: list[str] | tuple[str, ...] = (),
                 connect_timeout: float = CONNECT_TIMEOUT, worker_wait: float = WORKER_WAIT):
        self.target = cluster if isinstance(cluster, ClusterTarget) else parse_cluster(cluster)
        self.tls = tls_files(self.target.address)  # missing or unreadable files: refused here, not mid-handshake
        self.preload = list(preload)
        self.connect_timeout, self.worker_wait = connect_timeout, worker_wait
        self.client = self.cluster = None
        self.local: LocalClusterStart | None = None  # local:N only

    def start(self) -> DaskExecutor:
        """``local:N``: begin the cluster's start-up in the background (the caller plans the batch
        meanwhile; ``with`` waits for it). An existing cluster is connected to in ``with``."""
        if self.target.workers and self.local is None:
            self.local = LocalClusterStart(self.target.workers, kernel_preload=self.preload,
                                           worker_modules=[*WORKER_MODULES, __name__]).begin()
        return self

    def __enter__(self) -> DaskExecutor:
        from distributed import Client

        if self.target.workers:
            try:
                self.cluster = self.start().local.wait()
                self.client = Client(self.cluster)
            except BaseException:
                self.__exit__()  # `with` does not call it when __enter__ fails: nothing may be left running
                raise
            return self
        try:
            self.client = Client(self.target.address, timeout=self.connect_timeout,
                                 security=self.tls.security() if self.tls else None)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnreachableError(_unreachable(self.target.address, self.connect_timeout, exc)) from None
        except ValueError as exc:  # "IOStream is not idle; cannot convert to SSL": a tcp:// peer spoke first
            if not (self.tls and "cannot convert to SSL" in str(exc)):
                raise
            raise ClusterUnreachableError(_unreachable(self.target.address, self.connect_timeout, exc)) from None
        try:  # a scheduler without workers would queue the members forever
            self.client.wait_for_workers(1, timeout=self.worker_wait)
        except TimeoutError:
            self.client.close()
            self.client = None
            raise ClusterUnreachableError(
                f"the Dask scheduler at {self.target.address} has no workers (waited {self.worker_wait:g} s);"
                f" start some with `dask worker {self.target.address} --nthreads 1`") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            if self.local is None:  # local:N workers share one fork server, stopped with the cluster
                try:
                    self.client.run(stop_fork_servers)  # no idle template processes left on shared workers
                except Exception:  # a dead worker has nothing left to stop
                    pass
            self.client.close()
        if self.local is not None:
            self.local.close()
        self.client = self.cluster = self.local = None

    def run(self, jobs: list[Job]) -> Iterator[Outcome]:
        from distributed import as_completed

        if not jobs:
            return
        if self.client is None:
            raise ExecutorError("DaskExecutor.run() outside its `with` block")
        submit = self._submitter()
        # local:N: as many members in flight as there are live workers, the next one sent as one
        # finishes (the local executor's queue). Submitted all at once, the first ones were
        # spread over the workers ahead of time (two or more to a worker), so at the end of a
        # batch a member could wait behind a busy worker while another one sat idle; counting
        # the workers that died (their nanny starts new ones) did the same after a death.
        waiting = collections.deque(jobs)
        futures: dict = {}
        finished = as_completed()

        def fill() -> None:
            for _ in range(min(len(waiting), self._room(len(futures)))):
                job = waiting.popleft()
                futures[future := submit(job)] = (job, time.perf_counter())
                finished.add(future)

        fill()
        try:
            for future in finished:
                job, started = futures.pop(future)
                fill()
                try:
                    result = future.result()  # an Outcome (local:N) or (Outcome, run folder bytes)
                except Exception as exc:  # the worker died, or the cluster went away
                    yield lost(job, time.perf_counter() - started, _lost(exc))
                    continue
                yield result if self.local is not None else _receive(job, *result)
        finally:
            for future in futures:  # interrupted: do not leave members running on the cluster
                future.cancel()

    def _room(self, in_flight: int) -> int:
        """How many more members to send now: on local:N one per idle live worker (at least one
        when none is in flight, which waits for the nanny's new worker); elsewhere all of them."""
        if self.local is None:
            return sys.maxsize
        live = min(self.local.workers, len(self.client.nthreads()))  # one round trip to the scheduler
        return max(live - in_flight, 0 if in_flight else 1)

    def _submitter(self):
        """``submit(job) -> future``: on local:N the member itself; elsewhere with the project bundle."""
        batch = uuid.uuid4().hex[:8]
        bundles: dict[tuple[Path, Path], object] = {}

        def submit(job: Job):
            key = f"nbpress-{batch}-{job.index}"
            if self.local is not None:  # this machine's disk: nothing to ship either way
                return self.client.submit(run_member_in_place, job, self.local.fork_socket, key=key, pure=False, retries=0)
            where = (job.prepared.spec.notebook.parent, job.root / "templates")
            if where not in bundles:  # shipped once per batch; workers fetch it as they need it
                bundles[where] = self.client.scatter(pack_project(*where), hash=False)
            return self.client.submit(run_member, job, bundles[where], key=key, pure=False, retries=0)

        return submit
