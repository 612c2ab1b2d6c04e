"""Run requests taken by workers with a lease; the lapse sweep.

queued -> running (a worker's lease, renewed by each progress report) -> succeeded | failed |
cancelled; queued past ``expires_at`` -> expired. Every change is one conditional UPDATE that
re-checks the state it starts from, so two workers never hold one request and a worker that
lost its lease cannot write over the one that has it now: taking a request re-checks "queued"
(on PostgreSQL the candidate is read ``FOR UPDATE SKIP LOCKED``, so a second worker takes the
next one instead of waiting; on SQLite the single writer does the same), progress and finish
re-check "running under this worker with this token" (409 ``lease_lost`` otherwise).

:func:`sweep` ends what nobody will: a lapsed lease (the worker died) queues the request again
while ``RUN_MAX_ATTEMPTS`` allow, else fails it; a queued request past ``expires_at`` expires.
It runs lazily, on each claim, each status read and in the mail worker's loop, so nothing
stays "running" after its worker is gone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import and_, case, or_, select, update

from .. import audit
from ..errors import BadRequest, LeaseLost, NotFound
from ..extensions import db
from ..models import Publication, PublisherToken, Report, RunRequest, User, utcnow
from .projects import authorize
from .shapes import FinishIn

__all__ = ["Claimed", "claim", "progress", "finish", "sweep", "find_request",
           "LAPSE_RETRY", "LAPSE_FAILED"]

LAPSE_RETRY = "the worker stopped answering; queued again"
LAPSE_FAILED = "the worker stopped answering"
LAPSE_CANCELLED = "cancelled; the worker stopped answering"


@dataclass(frozen=True)
class Claimed:
    request: RunRequest
    report: str
    lease_seconds: int
    requested_by: str


def _settings() -> dict[str, Any]:
    return current_app.config["NBPRESS"]


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=_settings()["RUN_LEASE_SECONDS"])


def _requeue_window(now: dt.datetime) -> dt.datetime:
    """A request queued again gets a fresh queue window: its first one may be nearly used up."""
    return now + dt.timedelta(minutes=_settings()["RUN_QUEUE_MINUTES"])


# --- the sweep ---------------------------------------------------------------------------------


def _ended(ids: list[int], event: str, **detail: Any) -> None:
    for public_id, slug in db.session.execute(
            select(RunRequest.public_id, Report.slug).join(Report, Report.id == RunRequest.report_id).where(RunRequest.id.in_(ids))):
        audit.record(event, "ok", request=public_id, report=slug, by="sweep", **detail)


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """End or queue again what no worker will finish; returns counts by outcome (committed)."""
    now = now or utcnow()
    max_attempts = _settings()["RUN_MAX_ATTEMPTS"]
    lapsed = and_(RunRequest.status == "running", RunRequest.lease_until < now)
    expired = and_(RunRequest.status == "queued", RunRequest.expires_at < now)
    counts = dict.fromkeys(("requeued", "failed", "cancelled", "expired"), 0)
    # Read first: workers poll often and nearly always find nothing to sweep, and on SQLite even
    # an UPDATE that changes no row takes the database's one write lock.
    if db.session.scalar(select(RunRequest.id).where(or_(lapsed, expired)).limit(1)) is None:
        return counts
    window = _requeue_window(now)
    steps = [
        ("requeued", "run_requeued", and_(lapsed, RunRequest.cancel_requested.is_(False), RunRequest.attempts < max_attempts),
         dict(status="queued", stage="", lease_owner=None, lease_until=None, error_line=LAPSE_RETRY,
              expires_at=case((RunRequest.expires_at > window, RunRequest.expires_at), else_=window))),
        ("failed", "run_finished", and_(lapsed, RunRequest.cancel_requested.is_(False), RunRequest.attempts >= max_attempts),
         dict(status="failed", lease_until=None, finished_at=now, error_line=LAPSE_FAILED)),
        # Cancelled while its worker died: what the requester asked for, so it ends cancelled.
        ("cancelled", "run_finished", and_(lapsed, RunRequest.cancel_requested.is_(True)),
         dict(status="cancelled", lease_until=None, finished_at=now, error_line=LAPSE_CANCELLED)),
        ("expired", "run_expired", expired,
         dict(status="expired", finished_at=now,
              error_line=f"no worker took this request within {_settings()['RUN_QUEUE_MINUTES']} minutes")),
    ]
    for name, event, condition, values in steps:
        ids = list(db.session.scalars(update(RunRequest).where(condition).values(**values).returning(RunRequest.id)))
        if ids:
            _ended(ids, event, **({"status": name} if event == "run_finished" else {}))
        counts[name] = len(ids)
    db.session.commit()
    return counts


# --- taking a request ----------------------------------------------------------------------------


def _takeable(token: PublisherToken, slugs: list[str] | None, now: dt.datetime):
    reports = select(Report.id)
    if token.project is not None:
        reports = reports.where(Report.project == token.project)
    if slugs is not None:
        reports = reports.where(Report.slug.in_(slugs))
    return and_(RunRequest.status == "queued", RunRequest.expires_at >= now, RunRequest.cancel_requested.is_(False),
                RunRequest.report_id.in_(reports))


def claim(token: PublisherToken, worker: str, slugs: list[str] | None) -> Claimed | None:
    """Lease the oldest queued request this token may run to ``worker``; None when there is none (committed)."""
    sweep()
    lease = _lease()
    taken: list[int] = []
    for _ in range(3):  # on PostgreSQL a candidate may be taken between the read and the UPDATE: look again
        now = utcnow()
        if db.session.scalar(select(RunRequest.id).where(_takeable(token, slugs, now)).limit(1)) is None:
            break  # nothing queued (the usual poll): no UPDATE, so no write lock on SQLite
        picked = (select(RunRequest.id).where(_takeable(token, slugs, now)).order_by(RunRequest.created_at, RunRequest.id)
                  .limit(1).with_for_update(skip_locked=True).cte("picked"))
        taken = db.session.scalars(
            update(RunRequest).where(RunRequest.id.in_(select(picked.c.id)), _takeable(token, slugs, now))
            .values(status="running", stage="claimed", attempts=RunRequest.attempts + 1, started_at=now,
                    lease_owner=worker, lease_until=now + lease, publisher_id=token.id)
            .returning(RunRequest.id)).all()
        if taken:
            break
    if not taken:
        db.session.commit()
        return None
    request = db.session.scalars(select(RunRequest).where(RunRequest.id == taken[0]).execution_options(populate_existing=True)).one()
    report = db.session.get(Report, request.report_id)
    user = db.session.get(User, request.user_id)
    token.last_used_at = now
    audit.record("run_claimed", "ok", request=request.public_id, report=report.slug, worker=worker, attempt=request.attempts,
                 publisher=token.name)
    db.session.commit()
    return Claimed(request, report.slug, int(lease.total_seconds()), (user.display_name if user else "") or "a recipient")


def find_request(token: PublisherToken, public_id: str) -> RunRequest:
    """The request, when this token may act on its report: 404 unknown, 403 ``wrong_project``."""
    request = db.session.scalars(select(RunRequest).where(RunRequest.public_id == public_id)).first()
    if request is None:
        raise NotFound("No such run request.")
    authorize(token, db.session.get(Report, request.report_id))
    return request


def _held(request: RunRequest, token: PublisherToken, worker: str):
    return and_(RunRequest.id == request.id, RunRequest.status == "running", RunRequest.lease_owner == worker,
                RunRequest.publisher_id == token.id)


def progress(token: PublisherToken, request: RunRequest, worker: str, stage: str) -> tuple[bool, int]:
    """Renew the lease and record the stage; (cancel asked for, lease seconds). 409 when not held."""
    lease = _lease()
    done = db.session.execute(update(RunRequest).where(_held(request, token, worker))
                              .values(stage=stage, lease_until=utcnow() + lease))
    if done.rowcount != 1:
        raise LeaseLost()
    token.last_used_at = utcnow()
    db.session.commit()
    db.session.refresh(request)
    return request.cancel_requested, int(lease.total_seconds())


def finish(token: PublisherToken, request: RunRequest, body: FinishIn) -> str:
    """End the request as the worker says, or queue it again (a transient failure with tries
    left); returns the status now stored. Reporting the same end again answers the same."""
    if request.status == body.status and request.lease_owner == body.worker and request.publisher_id == token.id:
        return request.status  # a retried finish whose first answer was lost
    publication = None
    if body.publication is not None:
        publication = db.session.scalars(select(Publication).where(
            Publication.public_id == body.publication, Publication.report_id == request.report_id)).first()
        if publication is None:
            raise BadRequest(f"publication: no publication {body.publication!r} of this request's report")
    now = utcnow()
    retry = body.status == "failed" and body.transient and request.attempts < _settings()["RUN_MAX_ATTEMPTS"]
    if retry:
        values = dict(status="queued", stage="", lease_owner=None, lease_until=None,
                      error_line=f"attempt {request.attempts} failed: {body.error_line}"[:500],
                      expires_at=max(request.expires_at, _requeue_window(now)))
    else:
        # lease_owner stays: it tells a retried finish from another worker's (see above).
        values = dict(status=body.status, stage="", lease_until=None, finished_at=now, error_line=body.error_line)
    if body.run_id:
        values["run_id"] = body.run_id
    if publication is not None:
        values["publication_id"] = publication.id
    done = db.session.execute(update(RunRequest).where(_held(request, token, body.worker)).values(**values))
    if done.rowcount != 1:
        raise LeaseLost()
    report = db.session.get(Report, request.report_id)
    event, status = ("run_requeued", "queued") if retry else ("run_finished", body.status)
    audit.record(event, "ok", request=request.public_id, report=report.slug, status=status, worker=body.worker,
                 attempt=request.attempts, publisher=token.name, **({"transient": True} if body.transient else {}))
    token.last_used_at = now
    db.session.commit()
    return status
