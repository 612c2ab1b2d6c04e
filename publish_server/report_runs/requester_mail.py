"""The one mail a requester gets when a run request ends: succeeded (with the report page's link
for the new version), failed (with the error line), cancelled or expired.

Sent by the mail worker's loop (:func:`notifications.worker.run`), not by the request that ended
it: a worker's finish must not wait for SMTP. A request is taken for its mail by one
conditional UPDATE of ``notified_at`` (so two mail workers never both send it); when SMTP is
down the mark is taken back and a later pass tries again. A mail server that refuses the
message for good (5xx) is not asked again. The one window: a process killed between taking the
mark and handing the mail over loses that mail (it is never sent twice).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select, update

from ..errors import MailError, MailRefused
from ..extensions import db
from ..mail import compose, mailer
from ..models import Publication, Report, RunRequest, User, utcnow

__all__ = ["ENDED", "MailTotals", "send_due"]

log = logging.getLogger(__name__)

ENDED = ("succeeded", "failed", "cancelled", "expired")
_OUTCOMES = {"succeeded": "succeeded", "failed": "failed", "cancelled": "was cancelled", "expired": "expired"}
BATCH = 50


@dataclass
class MailTotals:
    sent: int = 0
    skipped: int = 0  # the requester is disabled: nobody to tell
    failed: int = 0  # refused for good by the mail server
    waiting: int = 0  # SMTP is down: a later pass tries again


def _link(app: Flask, request: RunRequest, report: Report) -> str:
    """The report page (with the new version's variant chosen); "" when the portal's address is unknown."""
    publication = db.session.get(Publication, request.publication_id) if request.publication_id else None
    if publication is None:
        publication = db.session.scalars(select(Publication).where(Publication.report_id == report.id)
                                         .order_by(Publication.id.desc()).limit(1)).first()
    base = app.config["NBPRESS"]["PUBLIC_URL"] or (publication.link_base if publication else "")
    if not base:
        return ""
    variant = {"variant": publication.variant_label} if request.publication_id and publication and publication.variant_label else {}
    return base + app.url_map.bind("localhost").build("pages.report", {"slug": report.slug, **variant})


def _message(app: Flask, request: RunRequest, user: User):
    report = db.session.get(Report, request.report_id)
    title = report.title or report.slug
    shown = ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in (request.parameters or {}).items())
    return compose("run_request", to_name=user.display_name, to_address=user.email,
                   subject=f"Your run of {title} {_OUTCOMES[request.status]}"[:200],
                   name=user.display_name or user.email, title=title, outcome=_OUTCOMES[request.status],
                   succeeded=request.status == "succeeded", error_line=request.error_line if request.status != "succeeded" else "",
                   parameters=shown[:1000], asked=request.created_at.strftime("%Y-%m-%d %H:%M"), link=_link(app, request, report))


def _take(request_id: int) -> bool:
    taken = db.session.execute(update(RunRequest).where(RunRequest.id == request_id, RunRequest.notified_at.is_(None))
                               .values(notified_at=utcnow()))
    db.session.commit()
    return taken.rowcount == 1


def _give_back(request_id: int) -> None:
    db.session.execute(update(RunRequest).where(RunRequest.id == request_id).values(notified_at=None))
    db.session.commit()


def send_due(app: Flask) -> MailTotals:
    """Mail every requester whose request ended and was not told yet (in an app context)."""
    totals = MailTotals()
    due = db.session.scalars(select(RunRequest).where(RunRequest.status.in_(ENDED), RunRequest.notified_at.is_(None))
                             .order_by(RunRequest.id).limit(BATCH)).all()
    for request in due:
        if not _take(request.id):
            continue  # another mail worker has it
        user = db.session.get(User, request.user_id)
        if user is None or not user.active:
            totals.skipped += 1
            continue
        try:
            message = _message(app, request, user)
        except MailError as exc:  # an address or name the mail module refuses: asking again will not help
            log.error("run request %s: no mail for the requester (%s)", request.public_id, exc)
            totals.failed += 1
            continue
        try:
            mailer().send(message)
        except MailRefused as exc:
            log.error("run request %s: the mail server refused the requester's mail (%s)", request.public_id, exc)
            totals.failed += 1
        except MailError as exc:  # SMTP down, 4xx, a timeout: untold, tried again on a later pass
            _give_back(request.id)
            totals.waiting += 1
            log.warning("run request %s: the requester's mail waits for SMTP (%s)", request.public_id, exc)
            break
        else:
            totals.sent += 1
    return totals
