"""A hard, generous time bound for work that must stay linear in the size of its input.

Not a benchmark: the bound is far above the linear cost (well under a second) and far below the
super-linear one (a 1 MB value through the old URL-password regex ran for about 800 s), so a test
fails, deterministically and without hanging, only when the cost has the wrong shape.
SIGALRM works in the main thread only, which is where pytest (and each xdist worker) runs tests.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

GENEROUS = 10.0  # seconds


class DeadlineExceeded(BaseException):
    """A BaseException, so that the portal's catch-all error handler cannot turn it into a 500."""


@contextlib.contextmanager
def deadline(seconds: float = GENEROUS) -> Iterator[None]:
    def expire(_signum, _frame):
        raise DeadlineExceeded(f"still running after {seconds:g} s: the cost is not linear in the input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
