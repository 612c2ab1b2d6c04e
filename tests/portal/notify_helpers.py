"""What the notification tests share: many readers seeded fast, publishing through the real API,
an SMTP handler that can stall at one RCPT, and counting mails per recipient."""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import hashlib
import threading

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import Grant, Group, Membership, Report, User
from publish_server.publishing import create_publisher_token
from tests.portal.conftest import make_pdf
from tests.portal.smtp_server import Inbox


def seed_readers(passwords, n: int, *, group: str = "readers", report: str = "weekly", prefix: str = "r") -> list[str]:
    """``n`` active recipients in ``group``, granted ``report`` (created empty): bulk inserts, one hash."""
    password_hash = passwords.hash("not used by these tests 123")  # one cheap hash (tests lower ARGON2 costs)
    emails = [f"{prefix}{i:05d}@example.org" for i in range(n)]
    if emails:
        db.session.execute(sa.insert(User), [{"email": e, "display_name": e.split("@")[0], "password_hash": password_hash,
                                              "public_id": hashlib.sha256(e.encode()).hexdigest()[:22]} for e in emails])
    found = db.session.scalars(sa.select(Group).where(Group.name == group)).first()
    if found is None:
        found = Group(name=group)
        db.session.add(found)
        db.session.flush()
    ids = db.session.scalars(sa.select(User.id).where(User.email.in_(emails))).all()
    if ids:
        db.session.execute(sa.insert(Membership), [{"user_id": uid, "group_id": found.id} for uid in ids])
    target = db.session.scalars(sa.select(Report).where(Report.slug == report)).first()
    if target is None:
        target = Report(slug=report, title=report.replace("_", " ").title())
        db.session.add(target)
        db.session.flush()
    if db.session.scalars(sa.select(Grant).where(Grant.report_id == target.id, Grant.group_id == found.id)).first() is None:
        db.session.add(Grant(report_id=target.id, group_id=found.id))
    db.session.commit()
    return emails


def publisher(app) -> str:
    _, token = create_publisher_token(f"t{threading.get_ident() % 10_000}-{id(app) % 10_000}")
    db.session.commit()
    return token


def publish(client, token: str, *, report: str = "weekly", run_id: str = "run-1", **meta):
    import io
    import json

    pdf = make_pdf(1, marker=run_id)
    body = {"report": report, "run_id": run_id, "sha256": hashlib.sha256(pdf).hexdigest(), "period_label": "2026-W48", **meta}
    response = client.post("/api/v1/publications", headers={"Authorization": f"Bearer {token}"},
                           data={"metadata": json.dumps(body), "file": (io.BytesIO(pdf), "report.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code in (200, 201), response.get_json()
    return response


def counts(inbox: Inbox) -> collections.Counter:
    """Recipient address -> how many mails it got."""
    with inbox.lock:
        return collections.Counter(m["To"].addresses[0].addr_spec for m in inbox.messages)


class StallingInbox(Inbox):
    """Accepts mail; at the ``stall_at``-th RCPT it stops answering until ``release`` is set
    (a deterministic place for a test to kill the sender: mails before it are sent, that one not)."""

    def __init__(self, stall_at: int = 0):
        super().__init__()
        self.stall_at, self.rcpts = stall_at, 0
        self.stalled, self.release = threading.Event(), threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts += 1
        if self.rcpts == self.stall_at:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"
