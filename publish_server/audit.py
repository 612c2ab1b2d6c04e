"""The audit log: one row per sign-in step, device event, publish and download.

Callers pass what happened and its outcome; the request's user and IP are added here. Never
pass passwords, codes or tokens in ``detail``.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request

from .extensions import db
from .models import AuditEvent, utcnow

__all__ = ["record", "insert", "values", "COLUMNS", "INSERT"]

_FORBIDDEN_KEYS = {"password", "code", "token", "secret", "authorization"}


def _check(detail: dict[str, Any]) -> None:
    leaked = _FORBIDDEN_KEYS & {k.lower() for k in detail}
    if leaked:
        raise ValueError(f"audit detail must not carry secrets: {sorted(leaked)}")


def record(event: str, outcome: str, *, user_id: int | None = None, **detail: Any) -> AuditEvent:
    _check(detail)
    ip = request.remote_addr if has_request_context() else None
    entry = AuditEvent(event=event, outcome=outcome, user_id=user_id, ip=ip, detail=detail)
    db.session.add(entry)
    return entry


def insert(event: str, outcome: str, *, user_id: int | None = None, **detail: Any) -> None:
    """:func:`record` for hot paths (downloads): one Core INSERT in the session's transaction.

    Same row, same checks; it skips the ORM unit of work (object state, flush planning), which
    costs more than the INSERT itself. The caller commits, as with :func:`record`.
    """
    ip = request.remote_addr if has_request_context() else None
    db.session.connection().execute(INSERT, values(event, outcome, user_id=user_id, ip=ip, **detail))


def values(event: str, outcome: str, *, user_id: int | None, ip: str | None, **detail: Any) -> dict[str, Any]:
    """The bound values of :data:`INSERT` for one row, keyed by :data:`COLUMNS` (for callers
    outside a request context)."""
    _check(detail)
    return dict(zip(COLUMNS, (utcnow(), event, outcome, user_id, ip, detail)))


COLUMNS = ("at", "event", "outcome", "user_id", "ip", "detail")  # what one INSERT sets
INSERT = AuditEvent.__table__.insert()
