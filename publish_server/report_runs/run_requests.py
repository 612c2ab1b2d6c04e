"""Asking for a run (with the limits), cancelling one, and a request as its status page shows it.

The limits are counted in the database by the INSERT itself: the new row is written only while
the user's active requests, the report's active requests and the user's requests of the last
hour are under their settings (``INSERT ... SELECT ... WHERE (SELECT count(*) ...) < limit``).
On SQLite writers are serialised, so the count and the insert are one step. On PostgreSQL the
report's row and then the user's are locked first (``FOR UPDATE``, always in that order, so two
asks never deadlock): a second ask for the same report or by the same user waits, and its INSERT
then counts the first one's committed row. So 50 asks at once store exactly the limit.
Active means queued (and not yet past ``expires_at``) or running.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import url_for
from sqlalchemy import and_, func, insert, literal, or_, select, update

from .. import audit
from ..errors import Conflict, TooManyRequests
from ..extensions import db
from ..models import Publication, Report, RunRequest, User, new_public_id, utcnow

__all__ = ["ask", "cancel", "cancel_audited", "request_json", "my_requests", "ENDED"]

ENDED = {"succeeded", "failed", "cancelled", "expired"}
_HOUR = dt.timedelta(hours=1)


def _active(now: dt.datetime):
    return or_(RunRequest.status == "running", and_(RunRequest.status == "queued", RunRequest.expires_at > now))


def _count(*conditions):
    return select(func.count()).select_from(RunRequest).where(*conditions).scalar_subquery()


def _lock_rows(report_id: int, user_id: int) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Report.id).where(Report.id == report_id).with_for_update())
        db.session.execute(select(User.id).where(User.id == user_id).with_for_update())


def ask(user: User, report: Report, values: dict[str, Any], settings: dict[str, Any]) -> RunRequest:
    """Queue a run of ``report`` with the checked ``values``; 429 over a limit (nothing stored)."""
    now = utcnow()
    per_user, per_report, per_hour = (settings["RUN_MAX_ACTIVE_PER_USER"], settings["RUN_MAX_ACTIVE_PER_REPORT"],
                                      settings["RUN_REQUESTS_PER_HOUR"])
    report_id, user_id = report.id, user.id
    db.session.commit()  # what was read so far ends here: the INSERT starts the writing transaction
    _lock_rows(report_id, user_id)
    table = RunRequest.__table__
    public_id = new_public_id()
    row = select(
        literal(public_id), literal(report_id), literal(user_id), literal(values, table.c.parameters.type),
        literal("queued"), literal(""), literal(now), literal(now + dt.timedelta(minutes=settings["RUN_QUEUE_MINUTES"])),
        literal(0), literal(False), literal(""),
    ).where(
        _count(RunRequest.user_id == user_id, _active(now)) < per_user,
        _count(RunRequest.report_id == report_id, _active(now)) < per_report,
        _count(RunRequest.user_id == user_id, RunRequest.created_at > now - _HOUR) < per_hour,
    )
    columns = ["public_id", "report_id", "user_id", "parameters", "status", "stage", "created_at", "expires_at",
               "attempts", "cancel_requested", "error_line"]
    stored = db.session.execute(insert(table).from_select(columns, row).returning(table.c.id)).first() is not None
    db.session.commit()
    if not stored:
        raise TooManyRequests(_over_which_limit(user_id, report_id, now, per_user, per_report, per_hour), code="run_limit")
    return db.session.scalars(select(RunRequest).where(RunRequest.public_id == public_id)).one()


def _over_which_limit(user_id: int, report_id: int, now: dt.datetime, per_user: int, per_report: int, per_hour: int) -> str:
    mine, theirs, recent = db.session.execute(select(
        _count(RunRequest.user_id == user_id, _active(now)), _count(RunRequest.report_id == report_id, _active(now)),
        _count(RunRequest.user_id == user_id, RunRequest.created_at > now - _HOUR))).one()
    if mine >= per_user:
        return (f"You already have {per_user} {'run' if per_user == 1 else 'runs'} queued or running; "
                "wait until one ends (or cancel one), then ask again.")
    if theirs >= per_report:
        return f"This report already has {per_report} runs queued or running; try again when one of them ends."
    if recent >= per_hour:
        return f"You asked for {per_hour} runs in the last hour, the most allowed; try again later."
    return "Too many runs were asked for at this moment; try again."  # a limit freed up since: asking again works


def cancel(run_request: RunRequest) -> str:
    """Cancel a queued request at once; ask a running one's worker to stop (it sees
    ``cancel_requested`` on its next progress report). Returns what happened; 409 once ended."""
    now = utcnow()
    table = RunRequest.__table__
    for _ in range(3):  # it may be taken by a worker between our read and our write: read again
        db.session.refresh(run_request)
        if run_request.status in ENDED:
            raise Conflict(f"This run already ended ({run_request.status}).", code="already_ended")
        if run_request.status == "queued":
            done = db.session.execute(update(table).where(table.c.id == run_request.id, table.c.status == "queued")
                                      .values(status="cancelled", finished_at=now, error_line="cancelled by request")).rowcount
            outcome = "cancelled"
        else:
            done = db.session.execute(update(table).where(table.c.id == run_request.id, table.c.status == "running")
                                      .values(cancel_requested=True)).rowcount
            outcome = "cancel_requested"
        if done:
            db.session.commit()
            db.session.refresh(run_request)
            return outcome
        db.session.rollback()
    raise Conflict("The run changed while cancelling; look at its status and try again.", code="conflict")


def cancel_audited(user: User, run_request: RunRequest, *, via: str) -> str:
    """:func:`cancel` with its audit row (refused too), committed; re-raises the 409."""
    try:
        outcome = cancel(run_request)
    except Conflict as exc:
        audit.record("run_cancel_asked", "refused", user_id=user.id, via=via, request=run_request.public_id, reason=exc.code)
        db.session.commit()
        raise
    audit.record("run_cancel_asked", outcome, user_id=user.id, via=via, request=run_request.public_id)
    db.session.commit()
    return outcome


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None  # stored as naive UTC


def request_json(run_request: RunRequest) -> dict[str, Any]:
    """A request as the API and the status page's polling read it."""
    report = db.session.get(Report, run_request.report_id)
    publication = db.session.get(Publication, run_request.publication_id) if run_request.publication_id else None
    page_url = None
    if publication is not None:
        variant = {"variant": publication.variant_label} if publication.variant_label else {}
        page_url = url_for("pages.report", slug=report.slug, _external=True, **variant)
    return {
        "id": run_request.public_id, "report": report.slug, "status": run_request.status, "stage": run_request.stage or "",
        "parameters": run_request.parameters or {}, "created_at": _iso(run_request.created_at),
        "started_at": _iso(run_request.started_at), "finished_at": _iso(run_request.finished_at),
        "error_line": run_request.error_line or "", "cancel_requested": bool(run_request.cancel_requested),
        "publication": publication.public_id if publication is not None else None, "page_url": page_url,
    }


def my_requests(user: User, limit: int = 20) -> list[tuple[RunRequest, Report]]:
    """The user's latest requests, newest first (the account page)."""
    rows = db.session.execute(select(RunRequest, Report).join(Report, Report.id == RunRequest.report_id)
                              .where(RunRequest.user_id == user.id).order_by(RunRequest.created_at.desc(), RunRequest.id.desc())
                              .limit(limit))
    return [(r, rep) for r, rep in rows]
