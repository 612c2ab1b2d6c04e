"""Where batch members run.

- :class:`~toolkit.batch.local.LocalExecutor` (default): W worker processes on this
  machine, each run in a new kernel forked from one template process (see :mod:`toolkit.execute.forkserver`).
- :class:`~toolkit.batch.dask_cluster.DaskExecutor` (``--cluster tcp://HOST:PORT``, ``tls://HOST:PORT`` or
  ``local:N``): members run on a dask.distributed cluster; from an existing cluster their run
  folders travel back as bytes (see :mod:`.bundle`), so workers need the same environment but
  no shared filesystem (``local:N`` workers write them in place, see :mod:`.dask_local`).

An executor is a context manager with ``run(jobs) -> iterator of Outcome`` (as they finish) and
``start()`` (begin any start-up ahead of ``with``, e.g. while the batch is planned),
and leaves every run folder on the submitting machine's disk.
"""

from __future__ import annotations

from .dask_cluster import DaskExecutor
from .local import LocalExecutor

__all__ = ["make_executor"]


def make_executor(*, workers: int | None = None, preload: list[str] | None = None, cluster: str | None = None):
    """The local executor, or the Dask one when ``cluster`` (``tcp://`` / ``tls://HOST:PORT`` / ``local:N``) is given."""
    if cluster:
        return DaskExecutor(cluster, preload=preload or [])
    return LocalExecutor(workers=workers, preload=preload or [])
