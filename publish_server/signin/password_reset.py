"""Self-service password reset by an emailed, single-use link: services that never touch ``request``.

:func:`request_link` answers nothing about the address: known, unknown and disabled accounts
take the same steps (a token drawn and hashed, a message composed) and the mail itself is sent
by the caller after the response has gone (see :class:`Outgoing`), so neither the answer nor
its timing tells whether an account exists. Only the SHA-256 of a token is stored; a link lives
``RESET_MINUTES`` and works once. :func:`complete` sets the new password under the same policy as
a password change and ends every session and device of the account.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage

from flask import Flask, current_app
from sqlalchemy import update

from .. import audit
from ..errors import MailError, PasswordRejected
from ..extensions import db
from ..mail import compose, mailer
from ..models import PasswordReset, User, utcnow
from .devices import revoke_all
from .password_step import normalise_email, notify_password_changed, passwords

__all__ = ["RESET_MINUTES", "Outgoing", "request_link", "find", "complete", "token_shape"]

log = logging.getLogger(__name__)

RESET_MINUTES = 15
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
_UNKNOWN = "nobody@invalid.example"  # composed for, never sent to


def token_shape(token: object) -> bool:
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Outgoing:
    """The reset mail, composed in the request; :meth:`send` runs after the response has gone."""

    app: Flask
    message: EmailMessage | None  # None: nobody to send to (the work was done all the same)
    user_id: int | None

    def send(self) -> None:
        if self.message is None:
            return
        with self.app.app_context():
            try:
                mailer().send(self.message)
            except MailError as exc:
                log.error("password reset link for user %s not sent: %s", self.user_id, exc)


def request_link(email: object, *, ip: str, link_for) -> Outgoing:
    """Make a link for the active account with this address, if any; ``link_for(token)`` is its URL."""
    address = normalise_email(email)
    user = None
    if address and len(address) <= 254:
        user = db.session.scalars(db.select(User).where(User.email == address)).first()
    known = user is not None and user.active
    token = secrets.token_urlsafe(32)
    moment = utcnow()
    message = compose("password_reset", to_name=user.display_name if known else "", to_address=user.email if known else _UNKNOWN,
                      subject="Reset your Notebook Press password", name=(user.display_name or user.email) if known else "",
                      link=link_for(token), minutes=RESET_MINUTES, ip=ip or "unknown", when=moment.strftime("%Y-%m-%d %H:%M"))
    _end_links(user.id if known else 0, moment)  # only the newest link works (for nobody: the same statement)
    if not known:
        audit.record("password.reset_request", "unknown_or_disabled", user_id=user.id if user is not None else None)
        return Outgoing(current_app._get_current_object(), None, None)
    db.session.add(PasswordReset(user_id=user.id, token_hash=_hash(token), ip=(ip or "")[:64], created_at=moment,
                                 expires_at=moment + dt.timedelta(minutes=RESET_MINUTES)))
    audit.record("password.reset_request", "sent", user_id=user.id)
    return Outgoing(current_app._get_current_object(), message, user.id)


def _end_links(user_id: int, moment: dt.datetime) -> None:
    table = PasswordReset.__table__
    db.session.execute(update(table).where(table.c.user_id == user_id, table.c.used_at.is_(None)).values(used_at=moment))


def find(token: object) -> PasswordReset | None:
    """The open link with this token (unused, unexpired, its user active), else None."""
    if not token_shape(token):
        return None
    reset = db.session.scalars(db.select(PasswordReset).where(PasswordReset.token_hash == _hash(token))).first()
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        return None
    user = db.session.get(User, reset.user_id)
    return reset if user is not None and user.active else None


def complete(token: object, new: object, repeat: object) -> User | None:
    """Set the password from an open link; None when the link no longer works.

    Raises :class:`PasswordRejected` (message safe to show; the link stays usable) when the
    new password fails the policy or the two differ.
    """
    reset = find(token)
    if reset is None:
        audit.record("password.reset", "link_ended")
        return None
    user = db.session.get(User, reset.user_id)
    hasher = passwords()
    try:
        text = hasher.check_policy(new, email=user.email)
        if new != repeat:
            raise PasswordRejected("The two new passwords do not match.")
    except PasswordRejected as exc:
        audit.record("password.reset", "failed", user_id=user.id, reason=str(exc)[:120])
        raise
    moment = utcnow()
    table = PasswordReset.__table__
    used = db.session.execute(update(table).where(table.c.id == reset.id, table.c.used_at.is_(None)).values(used_at=moment))
    if used.rowcount != 1:  # the same link submitted twice at once: only one sets the password
        return None
    user.password_hash = hasher.hash(text)
    user.must_change_password = False
    _end_links(user.id, moment)
    revoke_all(user, moment, by="password_reset")  # every device needs a code again; every token ends
    audit.record("password.reset", "ok", user_id=user.id)
    notify_password_changed(user, moment, by_operator=False)
    return user
