"""Per-account brute-force brake on the password step (per-IP limits are Flask-Limiter's).

Every password attempt first takes a slot of the submitted email's guess counter
(:mod:`guess_counters`), *before* the password is checked and whether or not an account has that
email: an unknown address is braked exactly like an existing one (same status, body and work),
so the brake tells nobody which accounts exist. A right password hands its slot back, so the
counter holds failed attempts. After ``FREE_FAILURES`` (10) of them in the window, each further
attempt must wait a growing delay (2, 4, 8 ... seconds after the latest, at most
``MAX_DELAY_SECONDS``); at ``LOGIN_FAILURES_PER_HOUR`` the email takes no password attempts
until the hour since the window's first failure has passed. Concurrent attempts cannot slip
past either limit: slots are taken atomically.

A trusted device of the account is exempt, so an attacker hammering an account does not lock
its owner out, but only when the device checks would let that device skip the code from this
address and MAC (:func:`devices.check`); a device token presented from another network is
braked like any other request. Times come from the injectable clock (:mod:`clock`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..errors import TooManyRequests
from ..extensions import db
from ..models import User
from . import devices, guess_counters
from .clock import now
from .mac_addresses import MacReading
from .password_step import normalise_email

__all__ = ["Attempt", "admit", "FREE_FAILURES", "MAX_DELAY_SECONDS"]

FREE_FAILURES = 10
MAX_DELAY_SECONDS = 300
WINDOW = dt.timedelta(hours=1)


def _delay(failures: int) -> float:
    return 0 if failures < FREE_FAILURES else min(2 ** (failures - FREE_FAILURES + 1), MAX_DELAY_SECONDS)


def _key(address: str) -> str:
    # Hashed: the table holds no addresses, and any submitted text becomes a key of fixed size.
    return "password:" + hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """A password attempt admitted by the brake; :meth:`succeeded` hands its slot back."""

    key: str | None  # None: a trusted device, exempt

    def succeeded(self) -> None:
        if self.key is not None:
            guess_counters.give_back(self.key)


def admit(email: object, device_secret: object, *, ip: str, read_mac: Callable[[str], MacReading]) -> Attempt:
    """Take a password attempt for ``email`` or raise 429; the same for unknown accounts.

    ``read_mac(ip)`` is called only when a device of this account has to be checked.
    """
    address = normalise_email(email)
    user = db.session.scalars(db.select(User).where(User.email == address)).first() if address else None
    moment = now()
    if device_secret is not None:
        device = devices.find(device_secret)  # looked up for unknown accounts too: the same work either way
        if user is not None and device is not None and device.user_id == user.id \
                and devices.check(user, device_secret, ip, read_mac(ip), moment).trusted:
            db.session.rollback()  # check() marks the device seen; the sign-in that follows does that for real
            return Attempt(None)
    key = _key(address)
    cap = current_app.config["NBPRESS"]["LOGIN_FAILURES_PER_HOUR"]
    if guess_counters.take(key, limit=cap, window=WINDOW, moment=moment, wait=_delay) is None:
        audit.record("login.throttle", "braked", user_id=user.id if user is not None else None)
        raise TooManyRequests()
    return Attempt(key)
