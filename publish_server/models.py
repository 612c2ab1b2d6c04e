"""The portal's tables (SQLAlchemy 2). Migrations in ``publish_server/migrations`` follow these.

Identifiers that reach URLs or tokens are random (``public_id``), never the row number, so a
guessed id finds nothing. Times are stored as naive UTC.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

__all__ = [
    "utcnow", "User", "Group", "Membership", "Report", "Publication", "Grant",
    "PublisherToken", "RevokedToken", "AuditEvent", "Device", "LoginChallenge", "GuessCounter", "PasswordReset",
    "MailJob", "NotificationPreference", "RunGrant", "ReportProfile", "RunLog", "RunRequest",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_public_id() -> str:
    """128 random bits, URL-safe, never starting with ``-`` (a command line would read an
    id like ``-x3...`` given to the admin CLI as an option)."""
    while (candidate := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return candidate


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)  # the JWT subject
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    role: Mapped[str] = mapped_column(String(16), default="recipient")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Tokens issued before this instant are refused (password change, reset, disable).
    tokens_valid_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    must_change_password: Mapped[bool] = mapped_column(default=False)

    groups: Mapped[list[Group]] = relationship(secondary="memberships", back_populates="members")

    __table_args__ = (CheckConstraint("role IN ('recipient', 'operator', 'admin')", name="ck_users_role"),)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_operator(self) -> bool:
        """Operators see every report's schedule and runs (not its PDFs: those follow the grants)."""
        return self.role == "operator"


class Group(db.Model):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    members: Mapped[list[User]] = relationship(secondary="memberships", back_populates="groups")


class Membership(db.Model):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)

    # By user: the primary key's leading column. By group: the readers count, group deletions.
    __table_args__ = (Index("ix_memberships_group_id", "group_id"),)


class Report(db.Model):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    project: Mapped[str | None] = mapped_column(String(80))  # set by the first project token that acts on it

    publications: Mapped[list[Publication]] = relationship(back_populates="report", order_by="Publication.version.desc()")


class Publication(db.Model):
    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"))
    # A publication is (report, variant, period, version): versions count re-publications of one
    # variant's period, so a grid's north and south runs of a week are both v1.
    version: Mapped[int]
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    period_label: Mapped[str] = mapped_column(String(120), default="")
    variant: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # {"region": "north"}, in the spec's order
    variant_label: Mapped[str] = mapped_column(String(200), default="")  # its values joined by " · "; "" for none
    # Lower-cased period, variant and parameter values plus the ISO weeks of dates (see variants.search_text).
    search_text: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    pages: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    publisher_id: Mapped[int | None] = mapped_column(ForeignKey("publisher_tokens.id"))
    # Withdrawn: kept (its audit trail and version number stay), but answered 410 with the reason.
    withdrawn_at: Mapped[dt.datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(String(120))  # "operator" or "publisher <token name>"
    withdrawn_reason: Mapped[str | None] = mapped_column(String(500))
    # For the notification mails: the spec's one-line summary, whether to attach the PDF, and the
    # scheme+host the publish request came to (the link when PUBLIC_URL is not set).
    summary: Mapped[str] = mapped_column(String(300), default="")
    attach_pdf: Mapped[bool] = mapped_column(default=False)
    link_base: Mapped[str] = mapped_column(String(300), default="")

    report: Mapped[Report] = relationship(back_populates="publications")
    publisher: Mapped[PublisherToken | None] = relationship()

    __table_args__ = (
        UniqueConstraint("report_id", "run_id", name="uq_publications_run"),  # re-publishing is idempotent
        UniqueConstraint("report_id", "variant_label", "period_label", "version", name="uq_publications_version"),
        Index("ix_publications_report_created", "report_id", "created_at"),
    )


class Grant(db.Model):
    """Who may read what, to a user or a group: a report (every variant and version), one variant
    of a report (``variant``: its label; every version of it) or one publication (added to those).

    The rule lives in :func:`publish_server.access._visible`.
    """

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    variant: Mapped[str | None] = mapped_column(String(200))  # a variant label; only with report_id
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("(report_id IS NULL) <> (publication_id IS NULL)", name="ck_grants_target"),
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="ck_grants_subject"),
        CheckConstraint("variant IS NULL OR report_id IS NOT NULL", name="ck_grants_variant"),
        UniqueConstraint("report_id", "variant", "publication_id", "user_id", "group_id", name="uq_grants"),
        # The access rule's lookups (access._visible): a grant on this report / publication naming this subject.
        Index("ix_grants_report_subject", "report_id", "user_id", "group_id", "variant"),
        Index("ix_grants_publication_subject", "publication_id", "user_id", "group_id"),
    )


class PublisherToken(db.Model):
    """A token the toolkit publishes with. Only its SHA-256 is stored (it has 256 random bits)."""

    __tablename__ = "publisher_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in listings to tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    # The project it acts for: it publishes, describes and runs only that project's reports. None:
    # a token made before projects existed, which acts for every report (as it always did).
    project: Mapped[str | None] = mapped_column(String(80))


class RevokedToken(db.Model):
    """The JWT deny-list: jti of revoked access/refresh tokens, kept until they expire anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(db.Model):
    """Every sign-in step, publish and download: who, from where, what, outcome. Never secrets."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(48))
    outcome: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Device(db.Model):
    """A browser or API client that proved, with an emailed code, that it belongs to its user.

    It is recognised by a random device secret (a cookie for browsers, a ``device_token`` for
    API clients) of which only the SHA-256 is stored. ``ips`` and ``macs`` are the addresses it
    was verified from; ``mac_status`` says whether the MAC could be read ("known") or why not.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    client: Mapped[str] = mapped_column(String(8), default="web")  # "web" | "api"
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    trusted_until: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    macs: Mapped[list[str]] = mapped_column(JSON, default=list)
    mac_status: Mapped[str] = mapped_column(String(120), default="unknown: not checked")
    last_ip: Mapped[str] = mapped_column(String(64), default="")


class LoginChallenge(db.Model):
    """A sign-in waiting for its emailed code: password checked, nothing granted yet.

    ``binding_hash`` ties it to the browser (a cookie) or API client (a client secret) that
    started it; ``code_hmac`` is HMAC-SHA256 of the current code (a resend replaces it).
    """

    __tablename__ = "login_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    binding_hash: Mapped[str] = mapped_column(String(64))
    code_hmac: Mapped[str] = mapped_column(String(64))
    # The code a resend replaced: typing it is told "replaced", not just "wrong" (it still counts as a try).
    previous_code_hmac: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(8), default="web")
    reason: Mapped[str] = mapped_column(String(40), default="new_device")
    ip: Mapped[str] = mapped_column(String(64), default="")
    mac: Mapped[str | None] = mapped_column(String(17))
    mac_status: Mapped[str] = mapped_column(String(120), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    sends: Mapped[int] = mapped_column(default=1)
    used_at: Mapped[dt.datetime | None]


class GuessCounter(db.Model):
    """How many guesses one key (a submitted email, an account's codes) has used in its window.

    Changed only by :mod:`signin.guess_counters`, with conditional UPDATEs, so concurrent requests
    in any number of processes take exactly the allowed number of slots.
    """

    __tablename__ = "guess_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(default=0)
    last_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class PasswordReset(db.Model):
    """An emailed password-reset link: only the SHA-256 of its token is stored.

    It works once (``used_at``) until ``expires_at``; a newer link or a completed reset ends the
    user's other links.
    """

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class MailJob(db.Model):
    """One notification mail to send: the durable queue of :mod:`notifications`.

    A recipient is queued once per publication (the unique constraint); a sender takes jobs with
    a lease (``lease_owner`` until ``lease_until``) and marks each ``sent`` right after the SMTP
    server's 250. ``last_error`` holds the SMTP answer or the reason, never a secret.
    """

    __tablename__ = "mail_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="publication")  # "publication" | "digest"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("user_id", "publication_id", name="uq_mail_jobs_recipient"),
        CheckConstraint("kind IN ('publication', 'digest')", name="ck_mail_jobs_kind"),
        CheckConstraint("status IN ('queued', 'sending', 'sent', 'cancelled', 'failed')", name="ck_mail_jobs_status"),
        Index("ix_mail_jobs_due", "status", "next_attempt_at"),
    )


class NotificationPreference(db.Model):
    """How a user hears of a report's new publications; no row means ``each``."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), default="each")  # "each" | "digest" | "none"
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("mode IN ('each', 'digest', 'none')", name="ck_notification_preferences_mode"),)


class RunGrant(db.Model):
    """Who may ask for runs of a report, a user or a group. Reading its PDFs is a :class:`Grant`
    of its own (``grant --run`` adds both)."""

    __tablename__ = "run_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="ck_run_grants_subject"),
        UniqueConstraint("report_id", "user_id", "group_id", name="uq_run_grants"),
    )


class ReportProfile(db.Model):
    """What the toolkit told the portal about a report: its parameter schema (names, types,
    defaults, choices, labels; never a secret's value), its schedule and next fire times, its owners."""

    __tablename__ = "report_profiles"

    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {} when unscheduled
    next_runs: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO 8601, UTC
    owners: Mapped[list[str]] = mapped_column(JSON, default=list)  # addresses, lower-cased
    runnable: Mapped[bool] = mapped_column(default=True)  # False: its spec cannot run from a request
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    publisher_id: Mapped[int | None] = mapped_column(ForeignKey("publisher_tokens.id", ondelete="SET NULL"))


class RunLog(db.Model):
    """One run as the toolkit reported it (schedule, request, manual or batch): the history owners
    and operators see. ``notebook_html`` is a failed run's executed notebook as masked HTML, gzip."""

    __tablename__ = "run_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed | blocked | cancelled
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | request | manual | batch
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    duration_seconds: Mapped[float | None]
    error_line: Mapped[str] = mapped_column(String(500), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # as shown to readers
    request_id: Mapped[int | None] = mapped_column(ForeignKey("run_requests.id", ondelete="SET NULL"))
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publications.id", ondelete="SET NULL"))
    notebook_html: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("report_id", "run_id", name="uq_run_logs_run"),  # reporting a run again updates it
        CheckConstraint("status IN ('running', 'succeeded', 'failed', 'blocked', 'cancelled')", name="ck_run_logs_status"),
        CheckConstraint("trigger IN ('schedule', 'request', 'manual', 'batch')", name="ck_run_logs_trigger"),
        Index("ix_run_logs_report_started", "report_id", "started_at"),
    )


class RunRequest(db.Model):
    """A run asked for on the portal, queued until a worker holding the report's token takes it.

    queued -> running (a worker's lease, renewed by its progress reports) -> succeeded | failed |
    cancelled; queued past ``expires_at`` -> expired. A lease that lapses is the worker lost: the
    request is queued again while ``attempts`` allow, else failed with that reason.
    """

    __tablename__ = "run_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # checked values, JSON-typed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    stage: Mapped[str] = mapped_column(String(32), default="")  # the worker's last reported stage
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]  # queued past this: expired
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    publisher_id: Mapped[int | None] = mapped_column(ForeignKey("publisher_tokens.id", ondelete="SET NULL"))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[str | None] = mapped_column(String(64))
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publications.id", ondelete="SET NULL"))
    error_line: Mapped[str] = mapped_column(String(500), default="")
    notified_at: Mapped[dt.datetime | None]  # the requester's mail was sent

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired')",
                        name="ck_run_requests_status"),
        Index("ix_run_requests_report_status", "report_id", "status"),
        Index("ix_run_requests_user_status", "user_id", "status"),
    )
