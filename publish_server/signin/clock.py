"""The sign-in clock: brake windows, code expiry, device trust and last-seen times all read it."""

from __future__ import annotations

import datetime as dt

from flask import current_app

from ..models import utcnow

__all__ = ["now"]


def now() -> dt.datetime:
    """The current time (naive UTC); tests set ``NBPRESS_CLOCK`` to control it."""
    clock = current_app.config.get("NBPRESS_CLOCK")
    return clock() if clock is not None else utcnow()
