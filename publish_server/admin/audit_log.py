"""``audit tail``: the newest audit events."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..models import AuditEvent, User
from .common import print_table, when

__all__ = ["audit_group"]

audit_group = AppGroup("audit", help="The audit log.")


@audit_group.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=50, show_default=True, help="How many events.")
def audit_tail(count: int) -> None:
    """Print the newest audit events, oldest first."""
    stmt = (select(AuditEvent, User.email).outerjoin(User, User.id == AuditEvent.user_id)
            .order_by(AuditEvent.id.desc()).limit(count))
    rows = [[when(e.at), e.event, e.outcome, email or "-", e.ip or "-", json.dumps(e.detail or {}, sort_keys=True)]
            for e, email in reversed(db.session.execute(stmt).all())]
    print_table(["at (UTC)", "event", "outcome", "user", "ip", "detail"], rows)
