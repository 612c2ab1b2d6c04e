"""The scheduler daemon behind ``nbpress schedule`` (APScheduler 3, jobs persisted in a database).

    jobs       the job store and the specs: sync at start, next fire times (``--list``)
    tick       one scheduled job: execute -> checks -> render -> publish, retries, owner e-mail
    transient  which failures are retried (kernel died, database or network unreachable)
    control    stopping: grace period, then cancelling running kernels cleanly
    daemon     the process: signals, the scheduler, the orderly stop

APScheduler itself loads only when a scheduler or a trigger is made.
"""

from .control import Control
from .tick import Settings, TickResult, run_tick, scheduled_tick
from .transient import is_transient

__all__ = ["Control", "Settings", "TickResult", "run_tick", "scheduled_tick", "is_transient"]
