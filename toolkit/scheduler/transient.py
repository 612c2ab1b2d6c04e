"""Which failures of a scheduled run are worth another attempt.

The rule, as documented in the README ("Schedules"):

- the kernel died (``KernelDiedError``: killed, out of memory, segfault) - retried;
- the notebook raised a *connection* error: an exception named ``OperationalError`` (the DB-API
  class for "the database is not available" - SQLAlchemy, sqlite3, psycopg and friends all use
  it for refused connections, timeouts and disconnects), or one of Python's ``ConnectionError``
  family or ``TimeoutError`` - retried;
- a batch executor broke down (``ExecutorError``: a lost worker, no fork server) - retried;
- the portal was unreachable or answered 5xx/429 when publishing - retried *inside the same run*
  by the publish client (the PDF is fine: no need to execute the notebook again);
- anything else - an exception in the notebook, a cell past its timeout, a failed data check,
  a template error, bad input - is the report's own fault and is never retried.

The name-based rule errs towards retrying: sqlite3 also raises ``OperationalError`` for "no such
table". That costs at most ``retries.max`` extra attempts, never a wrong publication.
"""

from __future__ import annotations

__all__ = ["TRANSIENT_NOTEBOOK_ERRORS", "is_transient"]

TRANSIENT_NOTEBOOK_ERRORS = frozenset({
    "OperationalError",
    "ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "ConnectionAbortedError",
    "BrokenPipeError", "TimeoutError",
})


def is_transient(error_type: str | None, ename: str | None = None) -> bool:
    """True when a failure may go away if the run is tried again.

    ``error_type`` is the toolkit error's class name and ``ename`` the notebook exception's name,
    as ``run.json`` records them (``error.type``, ``error.ename``): the rule works the same for a
    run in this process and for a batch member that ran in a worker.
    """
    if error_type in {"KernelDiedError", "ExecutorError"}:
        return True
    # Only a plain ExecutionError (not CellTimeoutError: a hung cell is the notebook's business).
    return error_type == "ExecutionError" and ename in TRANSIENT_NOTEBOOK_ERRORS
