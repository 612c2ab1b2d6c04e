"""Per-account brute-force brake on the password step (per-IP limits are Flask-Limiter's).

Failed password attempts for an account are counted from the audit log over the last hour.
After ``FREE_FAILURES`` (10) of them each further attempt must wait a growing delay (2, 4, 8 ...
seconds after the latest failure, at most ``MAX_DELAY_SECONDS``); at
``LOGIN_FAILURES_PER_HOUR`` the account takes no password attempts until the hour has passed.
The brake is refused *before* the password is checked, and is the same for a right or wrong
password. A trusted device of the account (valid device cookie or ``device_token``) is exempt,
so an attacker hammering an account does not lock its owner out. Times come from the injected
clock (:func:`challenges.now`), never from sleeping.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app

from . import audit
from .challenges import now
from .devices import hash_secret
from .errors import TooManyRequests
from .extensions import db
from .models import AuditEvent, Device, User
from .signin import normalise_email

__all__ = ["check", "FREE_FAILURES", "MAX_DELAY_SECONDS"]

FREE_FAILURES = 10
MAX_DELAY_SECONDS = 300


def _trusted_device(user: User, secret: object, moment: dt.datetime) -> bool:
    if not isinstance(secret, str) or not 20 <= len(secret) <= 100:
        return False
    device = db.session.scalars(db.select(Device).where(Device.secret_hash == hash_secret(secret))).first()
    return device is not None and device.user_id == user.id and device.revoked_at is None and device.trusted_until > moment


def check(email: object, device_secret: object) -> None:
    """Raise 429 when this account must wait; nothing for unknown accounts or trusted devices."""
    address = normalise_email(email)
    user = db.session.scalars(db.select(User).where(User.email == address)).first() if address else None
    if user is None:
        return
    moment = now()
    if _trusted_device(user, device_secret, moment):
        return
    failures = db.session.execute(
        db.select(db.func.count(AuditEvent.id), db.func.max(AuditEvent.at)).where(
            AuditEvent.user_id == user.id, AuditEvent.event == "login.password", AuditEvent.outcome == "failed",
            AuditEvent.at > moment - dt.timedelta(hours=1))).one()
    count, latest = failures
    cap = current_app.config["NBPRESS"]["LOGIN_FAILURES_PER_HOUR"]
    if count >= cap:
        audit.record("login.throttle", "capped", user_id=user.id, failures=count)
        raise TooManyRequests()
    if count >= FREE_FAILURES and latest is not None:
        delay = min(2 ** (count - FREE_FAILURES + 1), MAX_DELAY_SECONDS)
        if moment < latest + dt.timedelta(seconds=delay):
            audit.record("login.throttle", "delayed", user_id=user.id, failures=count)
            raise TooManyRequests()
