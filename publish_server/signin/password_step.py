"""Password sign-in and password change: services that never touch ``request``.

:func:`authenticate` is the first sign-in step: it answers a ``User`` or ``None`` and nothing
else; the second step (:mod:`second_step`) comes between it and the issuing of tokens. Unknown
user, wrong password and disabled account take the same path through one Argon2 verification
(a dummy hash for unknown users) and give the same answer, so neither the message nor the
timing tells them apart.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import current_app

from .. import audit
from ..errors import MailError, PasswordRejected
from ..extensions import db
from ..mail import send_template
from ..models import User, utcnow
from .devices import revoke_all
from .passwords import Passwords

__all__ = ["authenticate", "change_password", "notify_password_changed", "normalise_email", "passwords"]

log = logging.getLogger(__name__)


def passwords() -> Passwords:
    """This app's password hasher, built on first use (its dummy hash costs one Argon2 run)."""
    hasher = current_app.extensions.get("nbpress.passwords")
    if hasher is None:
        hasher = current_app.extensions["nbpress.passwords"] = Passwords.from_settings(current_app.config["NBPRESS"])
    return hasher


def normalise_email(email: object) -> str:
    """The address as stored (trimmed, lower-case); "" (no such user) for non-strings and control characters.

    A control character can be in no stored address, and PostgreSQL refuses NUL in a query (a 500).
    """
    if not isinstance(email, str) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in email.strip()):
        return ""
    return email.strip().lower()


def authenticate(email: object, password: object) -> User | None:
    """The active user with this email and password, or None; audited either way."""
    address = normalise_email(email)
    user = None
    if address and len(address) <= 254:
        user = db.session.scalars(db.select(User).where(User.email == address)).first()
    hasher = passwords()
    matched = hasher.verify(user.password_hash if user is not None else None, password)
    if not matched or user is None or not user.active:
        audit.record("login.password", "failed", user_id=user.id if user is not None else None)
        return None
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)  # parameters rose since this hash was made
        audit.record("password.rehash", "ok", user_id=user.id)
    audit.record("login.password", "ok", user_id=user.id)
    return user


def change_password(user: User, current: object, new: object, repeat: object, **audit_detail: str) -> None:
    """Set a new password; earlier tokens (every device and session) stop counting.

    ``audit_detail`` goes into the audit rows (``client="api"`` from the API).

    Raises :class:`PasswordRejected` (message safe to show) and changes nothing when the
    current password is wrong, the two new ones differ, or the new one fails the policy. The
    policy runs first, so an over-long password is refused before anything is hashed.
    """
    hasher = passwords()

    def refuse(reason: str, message: str) -> PasswordRejected:
        audit.record("password.change", "failed", user_id=user.id, reason=reason, **audit_detail)
        return PasswordRejected(message)

    try:
        text = hasher.check_policy(new, email=user.email)
    except PasswordRejected as exc:
        raise refuse("policy", str(exc)) from None
    if new != repeat:
        raise refuse("mismatch", "The two new passwords do not match.")
    if not hasher.verify(user.password_hash, current):
        raise refuse("wrong_current", "Your current password is not correct.")
    user.password_hash = hasher.hash(text)
    user.must_change_password = False
    moment = utcnow()
    revoke_all(user, moment, by="password_change")  # every device needs a code again; every token ends
    audit.record("password.change", "ok", user_id=user.id, **audit_detail)
    notify_password_changed(user, moment, by_operator=False)


def notify_password_changed(user: User, moment: dt.datetime, *, by_operator: bool) -> None:
    """Tell the account's owner that its password changed (never the password); a failed send
    is logged, the change stands."""
    try:
        send_template("password_changed", to_name=user.display_name, to_address=user.email,
                      subject="Your Notebook Press password was changed", name=user.display_name or user.email,
                      how="reset by an operator" if by_operator else "changed", by_operator=by_operator,
                      when=moment.strftime("%Y-%m-%d %H:%M"))
    except MailError as exc:
        log.error("password change notice for user %s not sent: %s", user.id, exc)
