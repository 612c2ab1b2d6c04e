"""Per-client limits on failed attempts that hold when many arrive at once.

Flask-Limiter's ``deduct_when`` tests a limit before the view runs and deducts after it: requests
that arrive together all pass the test before any of them is deducted (50 guessed tokens at once
against "30 per minute": 37 were checked). Here a slot is taken before the view runs, with one
atomic increment in the limiter's storage, and given back when the answer is a success. However
many arrive at once, exactly the limit's number of failures are checked, and clients that
succeed are never throttled.

The slots live in Flask-Limiter's storage (memory, or Redis shared by every process) under the
fixed-window strategy, whose counters can be given back; the portal sets that strategy.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

from flask import make_response
from limits import RateLimitItem, parse_many
from werkzeug.exceptions import TooManyRequests

from .extensions import client_ip, limiter

__all__ = ["limit_failures"]


def _items(limit: str | Callable[[], str]) -> list[RateLimitItem]:
    return parse_many(limit() if callable(limit) else limit)


def limit_failures(limit: str | Callable[[], str], *, scope: str, key_func: Callable[[], str] = client_ip):
    """Decorate a view: at most ``limit`` failed answers (status >= 400) per ``key_func()`` value.

    ``limit`` is a Flask-Limiter string ("30 per minute") or a callable returning one (a setting,
    read at request time); ``scope`` names the counter, so two views never share one by accident.
    """

    def decorate(view):
        @functools.wraps(view)
        def limited(*args, **kwargs):
            if not limiter.enabled:
                return view(*args, **kwargs)
            strategy, key = limiter.limiter, key_func()
            taken: list[RateLimitItem] = []
            for item in _items(limit):
                if not strategy.hit(item, scope, key):
                    # This hit counted too; give back what it took of this and earlier items.
                    for held in (*taken, item):
                        strategy.hit(held, scope, key, cost=-1)
                    reset = strategy.get_window_stats(item, scope, key).reset_time
                    raise TooManyRequests(retry_after=max(1, math.ceil(reset - time.time())))
                taken.append(item)
            response = make_response(view(*args, **kwargs))  # an exception (an HTTPError) is a failure: slots kept
            if response.status_code < 400:
                for item in taken:
                    strategy.hit(item, scope, key, cost=-1)
            return response

        return limited

    return decorate
