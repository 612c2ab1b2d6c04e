"""Send the due notification mails: re-check, one SMTP connection per batch, a commit per mail.

Each batch of leased jobs (:mod:`claims`) is re-checked first: a job whose user was disabled,
lost the grant, chose ``none``, or whose publication was withdrawn is ``cancelled``. The rest go
out over one connection of the ``MAIL_URL`` transport; each job is marked sent right after the
server's 250 and committed, before the next mail. When SMTP is down (connection refused or
lost, 4xx, timeout) the untried jobs go back to the queue with exponential backoff and fail
after ``NOTIFY_MAX_ATTEMPTS``; a 5xx refusal fails that one job. ``NOTIFY_MAX_PER_MINUTE`` caps
what this process hands to SMTP in any 60 seconds.

The one window no design closes: the server answered 250 and this process dies before the sent
mark commits. After the lease runs out another sender takes the job and that one mail goes out
again, with the same Message-ID (see :func:`compose.message_id`), so clients can fold the two.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import access
from ..errors import MailError, MailRefused
from ..extensions import db
from ..mail import mailer
from ..models import MailJob, NotificationPreference, Publication, User, utcnow
from . import claims
from .compose import digest_mail, publication_mail

__all__ = ["Totals", "RateCap", "Sender"]

log = logging.getLogger(__name__)


@dataclass
class Totals:
    sent: int = 0
    cancelled: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: Totals) -> None:
        for name in ("sent", "cancelled", "retried", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def __str__(self) -> str:
        return f"sent {self.sent}, cancelled {self.cancelled}, back in the queue {self.retried}, failed {self.failed}"


@dataclass
class RateCap:
    """At most ``per_minute`` mails in any 60 s (0: no cap); :meth:`wait` sleeps until the next may go."""

    per_minute: int
    _sent: collections.deque = field(default_factory=collections.deque)

    def wait(self) -> None:
        if not self.per_minute:
            return
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            time.sleep(60 - (now - self._sent[0]))
            self._sent.popleft()
        self._sent.append(time.monotonic())


def new_owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Sender:
    """Drains the queue in an app context; one per process (the rate cap counts per process)."""

    def __init__(self, app: Flask, *, batch_size: int = 100, lease_seconds: float = 120, retry_seconds: float = 30,
                 stop: threading.Event | None = None):
        settings = app.config["NBPRESS"]
        self.app, self.owner = app, new_owner()
        self.stop = stop or threading.Event()  # set (SIGTERM): finish the mail in hand, give the rest back
        self.cap = RateCap(settings["NOTIFY_MAX_PER_MINUTE"])
        self.max_attempts = settings["NOTIFY_MAX_ATTEMPTS"]
        self.batch_size = min(batch_size, self.cap.per_minute) if self.cap.per_minute else batch_size
        # Long enough for a whole batch at the capped rate, so no other sender takes it meanwhile.
        extra = self.batch_size * 60 / self.cap.per_minute if self.cap.per_minute else 0
        self.lease = dt.timedelta(seconds=lease_seconds + extra)
        self.first_retry = dt.timedelta(seconds=retry_seconds)

    def run_once(self) -> Totals:
        """Send everything due now, batch after batch, until nothing due is left or SMTP is down."""
        # A commit per mail must not expire the batch's users and publications (a reload per mail);
        # every batch reads its rows afresh instead (populate_existing). Set per pass: the
        # worker ends its session after each.
        db.session().expire_on_commit = False
        totals = Totals()
        while not self.stop.is_set():
            before = totals.sent + totals.cancelled + totals.retried + totals.failed
            for kind in ("publication", "digest"):
                jobs = claims.claim(self.owner, limit=self.batch_size, lease=self.lease, kind=kind)
                if jobs:
                    done = self._batch(jobs)
                    totals.add(done)
                    if done.retried:  # SMTP is down: the next pass, after the backoff, tries again
                        return totals
            if totals.sent + totals.cancelled + totals.retried + totals.failed == before:
                return totals
        return totals

    # --- one batch -----------------------------------------------------------------------------

    def _batch(self, jobs: list[MailJob]) -> Totals:
        totals = Totals()
        lease_end = min(j.lease_until for j in jobs)
        publications = self._publications({j.publication_id for j in jobs})
        keep = self._recheck(jobs, publications)
        dropped = [j.id for j in jobs if j.id not in keep]
        if dropped:
            claims.mark(dropped, self.owner, "cancelled", "no longer to be told (disabled, not granted, opted out or withdrawn)")
            totals.cancelled += len(dropped)
        users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({j.user_id for j in jobs}))
                                                     .execution_options(populate_existing=True))}
        mails = self._mails([j for j in jobs if j.id in keep], publications, users)
        pending = list(mails)
        margin = min(dt.timedelta(seconds=5), self.lease / 3)
        try:
            with mailer().connection() as send:
                while pending:
                    ids, build = pending[0]
                    if self.stop.is_set() or utcnow() > lease_end - margin:  # stopping, or the lease runs out: hand them back untried
                        claims.release([i for ids_, _ in pending for i in ids_], self.owner)
                        return totals
                    try:
                        message = build()
                    except MailError as exc:  # e.g. an address the mail module refuses: this job only
                        log.error("notification jobs %s failed: %s", ids, exc)
                        claims.mark(ids, self.owner, "failed", str(exc))
                        totals.failed += len(ids)
                        pending.pop(0)
                        continue
                    try:
                        self.cap.wait()
                        send(message)
                    except MailRefused as exc:
                        log.error("notification jobs %s failed: the mail server refused them (%s)", ids, exc)
                        claims.mark(ids, self.owner, "failed", str(exc))
                        totals.failed += len(ids)
                    else:
                        claims.mark_sent(ids, self.owner, message["Message-ID"])
                        totals.sent += len(ids)
                    pending.pop(0)
        except MailError as exc:  # connection refused or lost, 4xx, timeout: all untried jobs wait and retry
            untried = [j for ids, _ in pending for j in jobs if j.id in ids]
            failed = claims.retry(untried, self.owner, str(exc), max_attempts=self.max_attempts, first_wait=self.first_retry)
            totals.retried += len(untried) - len(failed)
            totals.failed += len(failed)
            log.warning("SMTP unavailable (%s): %d notification mails back in the queue for a retry, %d failed after %d tries",
                        exc, len(untried) - len(failed), len(failed), self.max_attempts)
        return totals

    def _publications(self, ids: set[int]) -> dict[int, Publication]:
        query = (select(Publication).where(Publication.id.in_(ids)).options(selectinload(Publication.report))
                 .execution_options(populate_existing=True))
        return {p.id: p for p in db.session.scalars(query)}

    def _recheck(self, jobs: list[MailJob], publications: dict[int, Publication]) -> set[int]:
        """Ids of the jobs still to send: user active, still a reader, not opted out, publication not withdrawn."""
        keep = set()
        for pid in {j.publication_id for j in jobs}:
            publication = publications.get(pid)
            if publication is None or publication.withdrawn_at is not None:
                continue
            mine = [j for j in jobs if j.publication_id == pid]
            user_ids = {j.user_id for j in mine}
            readers = set(db.session.scalars(access.reader_ids(pid).where(User.id.in_(user_ids))))
            opted_out = set(db.session.scalars(select(NotificationPreference.user_id).where(
                NotificationPreference.report_id == publication.report_id, NotificationPreference.mode == "none",
                NotificationPreference.user_id.in_(user_ids))))
            keep.update(j.id for j in mine if j.user_id in readers and j.user_id not in opted_out)
        return keep

    def _mails(self, jobs: list[MailJob], publications: dict[int, Publication], users: dict[int, User]):
        """(job ids, build) per mail: one per publication job, one per user for digest jobs."""
        singles = [([j.id], lambda j=j: publication_mail(self.app, j, publications[j.publication_id], users[j.user_id]))
                   for j in jobs if j.kind == "publication"]
        per_user: dict[int, list[MailJob]] = {}
        for job in (j for j in jobs if j.kind == "digest"):
            per_user.setdefault(job.user_id, []).append(job)
        digests = [([j.id for j in mine], lambda mine=mine, uid=uid: digest_mail(
            self.app, mine, [publications[j.publication_id] for j in mine], users[uid])) for uid, mine in per_user.items()]
        return singles + digests
