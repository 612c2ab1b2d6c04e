"""What the run-request tests share: project tokens, queued requests made as the user side
stores them, and the worker's calls."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import PublisherToken, Report, RunRequest, User, utcnow
from publish_server.publishing import create_publisher_token

PROFILE = {
    "title": "Weekly Statistics",
    "parameters": [
        {"name": "week", "label": "ISO week to report", "type": {"kind": "date", "optional": False}, "required": False,
         "default": "2026-11-16"},
        {"name": "regions", "label": "", "type": {"kind": "list", "optional": False,
                                                  "item": {"kind": "literal", "choices": ["north", "south"], "optional": False}},
         "required": False, "default": ["north"]},
        {"name": "owner", "label": "", "type": {"kind": "str"}, "required": True},
    ],
    "schedule": {"cron": "0 6 * * MON", "timezone": "Europe/Berlin", "text": "every Monday at 06:00 (Europe/Berlin)"},
    "next_runs": ["2026-12-07T05:00:00Z", "2026-12-14T05:00:00+00:00"],
    "owners": ["Analyst@Example.com"],
    "runnable": True,
}


def project_token(name: str, project: str | None) -> str:
    row, plaintext = create_publisher_token(name)
    row.project = project
    db.session.commit()
    return plaintext


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def report(slug: str, project: str | None = None) -> Report:
    found = db.session.scalars(sa.select(Report).where(Report.slug == slug)).first()
    if found is None:
        found = Report(slug=slug, title=slug.replace("_", " ").title(), project=project)
        db.session.add(found)
        db.session.commit()
    return found


def queue(slug: str, user: User, *, parameters: dict | None = None, minutes: int = 30, project: str | None = None) -> RunRequest:
    """A queued request, as the portal's user side stores it."""
    now = utcnow()
    request = RunRequest(report_id=report(slug, project).id, user_id=user.id, parameters=parameters or {"week": "2026-11-23"},
                         created_at=now, expires_at=now + dt.timedelta(minutes=minutes))
    db.session.add(request)
    db.session.commit()
    return request


def stored(public_id: str) -> RunRequest:
    db.session.expire_all()
    return db.session.scalars(sa.select(RunRequest).where(RunRequest.public_id == public_id)).one()


def claim(client, token: str, worker: str = "host-a:1", **extra):
    return client.post("/api/v1/run-requests/claim", json={"worker": worker, **extra}, headers=bearer(token))


def progress(client, token: str, public_id: str, worker: str = "host-a:1", stage: str = "execute"):
    return client.post(f"/api/v1/run-requests/{public_id}/progress", json={"worker": worker, "stage": stage}, headers=bearer(token))


def finish(client, token: str, public_id: str, worker: str = "host-a:1", **body):
    return client.post(f"/api/v1/run-requests/{public_id}/finish", json={"worker": worker, **body}, headers=bearer(token))


def lapse(public_id: str) -> None:
    """Make the request's lease run out now (as if its worker had stopped answering a while ago)."""
    db.session.execute(sa.update(RunRequest).where(RunRequest.public_id == public_id)
                       .values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()


def token_row(name: str) -> PublisherToken:
    return db.session.scalars(sa.select(PublisherToken).where(PublisherToken.name == name)).one()
