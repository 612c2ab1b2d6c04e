"""Per-report notification preferences: ``each`` publication, a daily ``digest``, or ``none``.

No row means ``each``. What a user may choose from are the reports they can read now
(:func:`access.visible_reports`): a preference never reveals a report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from .. import access
from ..extensions import db
from ..models import NotificationPreference, Report, User

__all__ = ["MODES", "MODE_LABELS", "Choice", "choices", "set_mode"]

MODES = ("each", "digest", "none")
MODE_LABELS = {"each": "Each publication", "digest": "Daily digest", "none": "None"}


@dataclass(frozen=True)
class Choice:
    report: Report
    mode: str


def choices(user: User) -> list[Choice]:
    """Each report ``user`` can read with its current mode (title order)."""
    reports = list(db.session.scalars(access.visible_reports(user)))
    chosen = dict(db.session.execute(
        select(NotificationPreference.report_id, NotificationPreference.mode).where(NotificationPreference.user_id == user.id)).all())
    return [Choice(report, chosen.get(report.id, "each")) for report in reports]


def set_mode(user_id: int, report_id: int, mode: str) -> None:
    """Store one preference (the caller commits); ``each`` is stored as no row."""
    if mode not in MODES:
        raise ValueError(f"unknown notification mode {mode!r}")
    db.session.execute(delete(NotificationPreference).where(
        NotificationPreference.user_id == user_id, NotificationPreference.report_id == report_id))
    if mode != "each":
        db.session.add(NotificationPreference(user_id=user_id, report_id=report_id, mode=mode))
    db.session.flush()
