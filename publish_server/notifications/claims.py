"""Taking due mail jobs with a lease, and recording what became of each.

A job is due when it is ``queued`` and its ``next_attempt_at`` has come, or when it is
``sending`` under a lease that ran out (its sender died). Taking jobs is one conditional
UPDATE that re-checks "due" on every row it changes, so two senders never hold the same job:
on PostgreSQL the candidate rows are read ``FOR UPDATE SKIP LOCKED`` (a second sender takes the
next rows instead of waiting), on SQLite the database's single writer does the same. Every
outcome is written only while the lease is still this sender's (``lease_owner``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, bindparam, or_, select, update

from ..extensions import db
from ..models import MailJob, utcnow

__all__ = ["claim", "mark_sent", "mark", "retry", "release", "backoff"]

BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def _due(now: dt.datetime):
    return or_(
        and_(MailJob.status == "queued", MailJob.next_attempt_at <= now),
        and_(MailJob.status == "sending", MailJob.lease_until < now),
    )


def claim(owner: str, *, limit: int, lease: dt.timedelta, kind: str) -> list[MailJob]:
    """Lease up to ``limit`` due jobs of ``kind`` to ``owner`` and return them (committed).

    Digest jobs are taken per user: all of a user's due digest jobs together, so they make one mail.
    """
    now = utcnow()
    # The candidates in a CTE, read once: as an IN (subquery), PostgreSQL may run the subquery
    # again per row and, with SKIP LOCKED, take far more than ``limit`` rows.
    column = MailJob.user_id if kind == "digest" else MailJob.id
    picked = (select(column).where(_due(now), MailJob.kind == kind).order_by(MailJob.id).limit(limit)
              .with_for_update(skip_locked=True)  # ignored by SQLite, whose writer is alone anyway
              .cte("picked"))
    target = (MailJob.user_id if kind == "digest" else MailJob.id).in_(select(picked.c[column.key]))
    taken = db.session.scalars(
        update(MailJob).where(target, MailJob.kind == kind, _due(now))
        .values(status="sending", lease_owner=owner, lease_until=now + lease)
        .returning(MailJob.id)
    ).all()
    db.session.commit()
    if not taken:
        return []
    fresh = select(MailJob).where(MailJob.id.in_(taken)).order_by(MailJob.id).execution_options(populate_existing=True)
    return list(db.session.scalars(fresh))


_table = MailJob.__table__


def _mine(ids: list[int], owner: str):
    # Core, on the table: the ORM's bulk-update bookkeeping costs more than the UPDATE.
    return update(_table).where(_table.c.id.in_(ids), _table.c.lease_owner == owner, _table.c.status == "sending")


# Built once: it runs after every mail, and building a statement costs more than running it.
_SENT = (update(_table)
         .where(_table.c.id == bindparam("job"), _table.c.lease_owner == bindparam("owner"), _table.c.status == "sending")
         .values(status="sent", sent_at=bindparam("at"), message_id=bindparam("mid"), lease_owner=None, lease_until=None,
                 last_error=None))


def mark_sent(ids: list[int], owner: str, message_id: str) -> None:
    """Right after the SMTP server's 250: committed at once, so a restart never repeats it."""
    at = utcnow()
    db.session.connection().execute(_SENT, [{"job": i, "owner": owner, "at": at, "mid": message_id} for i in ids])
    db.session.commit()


def mark(ids: list[int], owner: str, status: str, reason: str) -> None:
    """A final outcome other than sent: ``cancelled`` (no longer to be told) or ``failed``."""
    db.session.execute(_mine(ids, owner).values(status=status, last_error=reason[:300], lease_owner=None, lease_until=None))
    db.session.commit()


def backoff(attempts: int) -> dt.timedelta:
    """30 s, 60 s, 120 s ... at most an hour: the wait after the ``attempts``-th failed try."""
    return dt.timedelta(seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, attempts - 1)))


def retry(jobs: list[MailJob], owner: str, reason: str, *, max_attempts: int, first_wait: dt.timedelta | None = None) -> list[MailJob]:
    """Give the jobs back for a later try (or mark them failed after ``max_attempts``); returns the failed ones."""
    failed = []
    now = utcnow()
    for job in jobs:
        attempts = job.attempts + 1
        if attempts >= max_attempts:
            failed.append(job)
            values = {"status": "failed"}
        else:
            wait = backoff(attempts) if first_wait is None else min(first_wait * 2 ** (attempts - 1),
                                                                     dt.timedelta(seconds=BACKOFF_MAX_SECONDS))
            values = {"status": "queued", "next_attempt_at": now + wait}
        db.session.execute(_mine([job.id], owner).values(attempts=attempts, last_error=reason[:300],
                                                         lease_owner=None, lease_until=None, **values))
    db.session.commit()
    return failed


def release(ids: list[int], owner: str) -> None:
    """Give back jobs not tried yet (the lease is running out): due again at once, no try counted."""
    if ids:
        db.session.execute(_mine(ids, owner).values(status="queued", next_attempt_at=utcnow(), lease_owner=None, lease_until=None))
        db.session.commit()
