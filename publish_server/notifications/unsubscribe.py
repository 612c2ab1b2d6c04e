"""The signed one-click unsubscribe token: a user and the report(s) one mail was about.

itsdangerous with ``SECRET_KEY`` and a salt of its own (no other signed value of the portal is
accepted here). It carries the user's ``public_id`` (never the row id) and report ids, and does
not expire: RFC 8058 links must keep working in old mails. It can only ever set those reports'
preferences to ``none`` (:func:`apply`).
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from .. import audit
from ..errors import NotFound
from ..extensions import db
from ..models import Report, User
from .preferences import set_mode

__all__ = ["make_token", "Target", "resolve", "apply"]

_SALT = "nbpress-notification-unsubscribe"
TOKEN_MAX = 300


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["NBPRESS"]["SECRET_KEY"], salt=_SALT)


def make_token(user_public_id: str, report_ids: list[int]) -> str:
    return _serializer().dumps([user_public_id, sorted(set(report_ids))])


class Target:
    """What a valid token names: the user and the reports (at least one)."""

    def __init__(self, user: User, reports: list[Report]):
        self.user, self.reports = user, reports


def resolve(token: str) -> Target:
    """The user and reports of ``token``; 404 for a tampered, malformed or stale one (no detail)."""
    if not isinstance(token, str) or not 1 <= len(token) <= TOKEN_MAX:
        raise NotFound()
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        raise NotFound() from None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], str)
            and isinstance(payload[1], list) and payload[1] and all(type(i) is int for i in payload[1])):
        raise NotFound()
    user = db.session.scalars(select(User).where(User.public_id == payload[0])).first()
    reports = list(db.session.scalars(select(Report).where(Report.id.in_(payload[1])).order_by(Report.title)))
    if user is None or not reports:
        raise NotFound()
    return Target(user, reports)


def apply(target: Target) -> None:
    """Set the named reports' notifications to ``none`` for the user, audited; nothing else changes."""
    for report in target.reports:
        set_mode(target.user.id, report.id, "none")
    audit.record("notifications_unsubscribed", "ok", user_id=target.user.id, via="one_click",
                 reports=[r.slug for r in target.reports])
    db.session.commit()
