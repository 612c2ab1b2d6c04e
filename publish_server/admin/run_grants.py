"""Run grants for ``grant --run`` / ``revoke-grant --run`` / ``grants``: who may ask for runs of a report.

Asking for a run needs reading the report too (its new version is what the run makes), so
granting a run adds the read grant when it is missing; revoking the run grant leaves reading alone.
"""

from __future__ import annotations

from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..models import Grant, Group, Report, RunGrant, User

__all__ = ["add_run_grant", "revoke_run_grant", "run_grant_rows"]


def _matching(model, report_id: int, subject: dict):
    stmt = select(model).where(model.report_id == report_id)
    for column in ("user_id", "group_id"):
        value = subject.get(column)
        stmt = stmt.where(getattr(model, column).is_(None) if value is None else getattr(model, column) == value)
    if model is Grant:
        stmt = stmt.where(Grant.variant.is_(None))
    return list(db.session.scalars(stmt))


def add_run_grant(report: Report, subject: dict) -> tuple[bool, bool]:
    """(run grant added, read grant added); both already there: (False, False). The caller commits."""
    added_run = added_read = False
    if not _matching(RunGrant, report.id, subject):
        db.session.add(RunGrant(report_id=report.id, **subject))
        audit.record("run_grant_added", "ok", report_id=report.id, **subject)
        added_run = True
    if not _matching(Grant, report.id, subject):
        db.session.add(Grant(report_id=report.id, **subject))
        audit.record("grant_added", "ok", report_id=report.id, by="grant --run", **subject)
        added_read = True
    return added_run, added_read


def revoke_run_grant(report: Report, subject: dict) -> bool:
    """Remove the run grant (the read grant stays); False when there was none. The caller commits."""
    found = _matching(RunGrant, report.id, subject)
    for row in found:
        db.session.delete(row)
    if found:
        audit.record("run_grant_revoked", "ok", report_id=report.id, **subject)
    return bool(found)


def run_grant_rows(report: Report | None) -> list[list[str]]:
    """Rows for the ``grants`` table: report, variant, "run", to whom."""
    stmt = select(RunGrant).order_by(RunGrant.report_id, RunGrant.id)
    if report is not None:
        stmt = stmt.where(RunGrant.report_id == report.id)
    rows = []
    for g in db.session.scalars(stmt):
        subject = "user " + db.session.get(User, g.user_id).email if g.user_id else "group " + db.session.get(Group, g.group_id).name
        rows.append([db.session.get(Report, g.report_id).slug, "-", "run", subject])
    return rows
