"""Where batch members run.

Today: :class:`~toolkit.executors.local.LocalExecutor`, W worker processes on this machine,
each run in a new kernel forked from one template process (see ``forkserver``). A Dask
executor (``--cluster tcp://HOST:PORT`` / ``local:N``) is planned behind the same interface.

An executor is a context manager with ``run(jobs) -> iterator of Outcome`` (as they finish),
and leaves every run folder on the submitting machine's disk.
"""

from __future__ import annotations

__all__ = ["make_executor"]


def make_executor(*, workers: int | None = None, preload: list[str] | None = None):
    from .local import LocalExecutor

    return LocalExecutor(workers=workers, preload=preload or [])
