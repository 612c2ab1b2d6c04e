"""Queue a notification for every reader of a new publication, in the publish transaction.

One ``INSERT ... SELECT`` over :func:`access.reader_ids` (the grant rule, not a copy of it):
thousands of recipients cost one statement, and the unique (user, publication) constraint means
a recipient is queued at most once per publication. A reader whose preference for the report is
``none`` gets no job; ``digest`` readers get one due at the next ``DIGEST_HOUR_UTC``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, insert, literal, select

from .. import access
from ..extensions import db
from ..models import MailJob, NotificationPreference, Publication, User, utcnow

__all__ = ["next_digest_at", "enqueue_publication"]


def next_digest_at(now: dt.datetime, hour: int) -> dt.datetime:
    """The first ``hour``:00 UTC at or after ``now`` (naive UTC, like every stored time)."""
    due = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return due if due >= now else due + dt.timedelta(days=1)


def enqueue_publication(publication: Publication, *, digest_hour: int) -> int:
    """Queue the mails announcing ``publication``; returns how many were queued (the caller commits)."""
    now = utcnow()
    chosen = select(NotificationPreference.mode).where(
        NotificationPreference.user_id == User.id, NotificationPreference.report_id == publication.report_id).scalar_subquery()
    mode = func.coalesce(chosen, "each")
    readers = (
        access.reader_ids(publication.id)
        .where(mode != "none")
        .add_columns(
            literal(publication.id), case((mode == "digest", "digest"), else_="publication"), literal("queued"), literal(0),
            case((mode == "digest", next_digest_at(now, digest_hour)), else_=now), literal(now),
        )
    )
    columns = ["user_id", "publication_id", "kind", "status", "attempts", "next_attempt_at", "created_at"]
    result = db.session.execute(insert(MailJob).from_select(columns, readers))
    return result.rowcount or 0
