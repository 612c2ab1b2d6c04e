"""Publishing: publisher tokens, upload checks, versions and audiences. No ``request`` in here.

The API view hands over what it read from the request (the bearer token, the metadata text and
the file stream); :func:`publish` does the rest and leaves the commit to the caller, so every
publication, its grants and its audit row land in one transaction at the request boundary.

Order of the checks, cheapest first and nothing stored before it is needed:

1. the publisher token (401), 2. the metadata (400; its size and nesting before it is parsed),
3. the report (404 when unknown and ``AUTO_CREATE_REPORTS`` is off; 403 ``wrong_project`` when
   the token acts for another project, see :mod:`report_runs.projects`), the audience (400
   naming unknown groups or users),
4. an earlier publication of the same run: same SHA-256 -> that publication again (idempotent,
   no new version), another SHA-256 -> 409,
5. the bytes, streamed into the content-addressed store with the size cap (413), the PDF magic
   bytes and ``%%EOF`` trailer (415) and the announced SHA-256 (422) checked on the way: a
   failed check aborts the store's write, so nothing is left behind; a full disk is 507, an
   object store that fails 503 (:mod:`s3_store`),
6. the rows, with the version ``max + 1`` of the same (report, variant, period), and the
   variant grants of a ``variant_audience`` (created once). Two publishers may race: the unique
   constraints on (report, run) and (report, variant, period, version) make the loser's flush
   fail; it rolls back and tries again, then finds the winner's row (same run) or takes the
   next version (another run).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from flask import Flask
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from . import audit, jsonbody
from .errors import (
    BadRequest, ChecksumMismatch, Conflict, HTTPError, NotFound, PayloadTooLarge, StorageFull, Unauthorized, UnsupportedMediaType,
)
from .extensions import db
from .models import Grant, Group, Publication, PublisherToken, Report, User, utcnow
from .report_runs.projects import authorize as authorize_project
from .storage import Store, store_for
from .variants import LABEL_MAX, search_text, variant_label

__all__ = [
    "REPORT_SLUG", "Audience", "PublishMetadata", "PublishPolicy", "PublishResult",
    "create_publisher_token", "authenticate_publisher", "parse_metadata", "publish", "mask_url_passwords",
]

TOKEN_PREFIX = "nbp_"
PDF_MAGIC = b"%PDF-"
TRAILER_WINDOW = 1024  # readers look for %%EOF within the last KiB (as Acrobat does)
WRITE_ATTEMPTS = 5
REPORT_SLUG = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_SLUG = f"^{REPORT_SLUG}$"
_RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")  # RFC 3986
METADATA_MAX_BYTES = 256 * 1024  # a few KiB in use; below what the parameter caps add up to (100 x 4,096)
MAX_PARAMETERS, MAX_PARAMETER_NAME, MAX_PARAMETER_VALUE = 100, 100, 4096
MAX_VARIANT_KEYS, MAX_VARIANT_VALUE = 10, 100


def _refusal(error: HTTPError, reason: str) -> HTTPError:
    """Attach the audit reason (which may say more than the public message) to an error."""
    error.audit_reason = reason
    return error


# --- metadata --------------------------------------------------------------------------------


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of each ``scheme://user:password@`` shown as ``***``.

    The scheme is a letter, then letters, digits, '+', '.', '-'; the user has no ':', '/', '@' or
    whitespace; the password runs to the next '@', with no whitespace on the way. One pass, linear
    in the length of ``text`` (a regex backtracked: quadratic). The toolkit masks before sending
    with its own copy of this function (tests/test_url_passwords.py holds both to the same cases).
    """
    pieces, copied, at = [], 0, -1  # at: the first '@' or whitespace at or after the last password's start
    found = text.find("://")
    while found != -1:
        start = found
        while start > copied and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        colon = found + 3
        while colon < len(text) and text[colon] not in ":/@" and not text[colon].isspace():
            colon += 1
        if any(ch.isalpha() for ch in text[start:found]) and text.startswith(":", colon):
            if at <= colon:  # else the '@' found for an earlier URL ends this password too: scanned once
                at = colon + 1
                while at < len(text) and text[at] != "@" and not text[at].isspace():
                    at += 1
            if at > colon + 1 and text.startswith("@", at):
                pieces += [text[copied : colon + 1], "***"]
                copied = at
        found = text.find("://", max(found + 3, copied))
    return "".join(pieces) + text[copied:]


def _printable(value: str) -> str:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("must not contain control characters")
    return value


class Audience(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[str] = Field(default_factory=list, max_length=100)
    users: list[str] = Field(default_factory=list, max_length=100, description="e-mail addresses")

    @field_validator("groups")
    @classmethod
    def _group_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not 1 <= len(name.strip()) <= 80:
                raise ValueError("a group name has 1 to 80 characters")
            _printable(name)
        return list(dict.fromkeys(n.strip() for n in names))

    @field_validator("users")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        cleaned = [e.strip().lower() for e in emails]
        for email in cleaned:
            if len(email) > 254 or not _EMAIL.match(email) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in email):
                raise ValueError(f"not an e-mail address: {email[:80]!r}")
        return list(dict.fromkeys(cleaned))


class NotifyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attach_pdf: bool = Field(False, description="attach the PDF to notification mails (when under NOTIFY_ATTACH_MAX_MB)")


class PublishMetadata(BaseModel):
    """The ``metadata`` part of an upload (JSON)."""

    model_config = ConfigDict(extra="forbid")

    report: str = Field(pattern=_SLUG, description="report slug, e.g. weekly_statistics")
    title: str | None = Field(None, max_length=200, description="report title, used when the report is created")
    description: str | None = Field(None, max_length=2000)
    run_id: str = Field(pattern=_RUN_ID, description="the toolkit's run id; one publication per run")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the file, hex")
    parameters: dict[str, Any] = Field(default_factory=dict, description=(
        f"at most {MAX_PARAMETERS}; names of at most {MAX_PARAMETER_NAME} characters, values of at most "
        f"{MAX_PARAMETER_VALUE:,} (lists and objects counted as JSON)"))
    period_label: str = Field("", max_length=120, description="e.g. 2026-W47")
    pages: int | None = Field(None, ge=0, le=1_000_000)
    audience: Audience | None = Field(None, description=(
        "readers added to this publication only; everyone granted the report reads it too"))
    variant: dict[str, str] = Field(default_factory=dict, description=(
        f"the run's variant, e.g. {{\"region\": \"north\"}}: at most {MAX_VARIANT_KEYS} names, values of 1 to "
        f"{MAX_VARIANT_VALUE} characters, in the order the spec declares them (variant_by)"))
    variant_audience: Audience | None = Field(None, description=(
        "readers of every version of this variant: the portal grants them the variant (needs `variant`)"))
    summary: str = Field("", max_length=300, description="one line for the notification mails (the spec's notify.summary, rendered)")
    notify: NotifyOptions | None = Field(None, description="the report's notification settings (spec key notify)")

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("title", "description", "period_label", "summary")
    @classmethod
    def _clean_text(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value.strip())

    @field_validator("variant")
    @classmethod
    def _variant(cls, variant: dict[str, str]) -> dict[str, str]:
        if len(variant) > MAX_VARIANT_KEYS:
            raise ValueError(f"at most {MAX_VARIANT_KEYS} variant names, not {len(variant)}")
        cleaned = {}
        for name, value in variant.items():
            if not 1 <= len(_printable(name)) <= MAX_PARAMETER_NAME:
                raise ValueError(f"a variant name has 1 to {MAX_PARAMETER_NAME} characters")
            value = " ".join(_printable(value).split())
            if not 1 <= len(value) <= MAX_VARIANT_VALUE:
                raise ValueError(f"{_printable(name)!r}: a variant value has 1 to {MAX_VARIANT_VALUE} characters")
            cleaned[name] = value
        if len(variant_label(cleaned)) > LABEL_MAX:
            raise ValueError(f"the variant's values joined make more than {LABEL_MAX} characters")
        return cleaned

    @model_validator(mode="after")
    def _variant_audience_needs_variant(self) -> PublishMetadata:
        if self.variant_audience is not None and not self.variant:
            raise ValueError("variant_audience needs a variant")
        return self

    @field_validator("parameters")
    @classmethod
    def _bounded(cls, params: dict[str, Any]) -> dict[str, Any]:
        # Shown on pages and in mails, stored in every version: sizes a person would type, not megabytes.
        if len(params) > MAX_PARAMETERS:
            raise ValueError(f"at most {MAX_PARAMETERS} parameters, not {len(params)}")
        for name, value in params.items():
            if len(name) > MAX_PARAMETER_NAME:
                raise ValueError(f"a parameter name has at most {MAX_PARAMETER_NAME} characters: {name[:40]!r}...")
            size = len(value) if isinstance(value, str) else len(json.dumps(value))
            if size > MAX_PARAMETER_VALUE:
                raise ValueError(f"{name!r}: a value has at most {MAX_PARAMETER_VALUE:,} characters "
                                 f"(lists and objects counted as JSON), not {size:,}")
        return params

    @field_validator("parameters")
    @classmethod
    def _no_url_passwords(cls, params: dict[str, Any]) -> dict[str, Any]:
        # Recipients see the parameters; a database URL must not show them its password.
        return {k: mask_url_passwords(v) if isinstance(v, str) else v for k, v in params.items()}


def parse_metadata(text: str | None) -> PublishMetadata:
    if not text:
        raise BadRequest("Send the publication metadata as JSON in a multipart part named 'metadata'.")
    data = jsonbody.loads(text, what="metadata", max_bytes=METADATA_MAX_BYTES)
    if not isinstance(data, dict):
        raise BadRequest("metadata: expected a JSON object.")
    try:
        return PublishMetadata.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"metadata.{where}: {first['msg']}" if where else f"metadata: {first['msg']}") from None


# --- publisher tokens ------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_publisher_token(name: str) -> tuple[PublisherToken, str]:
    """A new token (256 random bits); returns the row (added, not committed) and the plaintext.

    Only the SHA-256 is stored: a token is random, so a slow hash would add nothing.
    """
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = PublisherToken(name=name, token_hash=_token_hash(plaintext), prefix=plaintext[:12])
    db.session.add(row)
    db.session.flush()
    return row, plaintext


def authenticate_publisher(token: str | None) -> PublisherToken:
    """The publisher token's row; 401 (same answer) for a missing, unknown or revoked token."""
    refused = Unauthorized("A valid publisher token is required.")
    if not token or len(token) > 256:
        raise _refusal(refused, "no_token" if not token else "bad_token")
    digest = _token_hash(token)
    row = db.session.scalars(select(PublisherToken).where(PublisherToken.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise _refusal(refused, "bad_token")
    if row.revoked_at is not None:
        raise _refusal(refused, "revoked_token")
    return row


# --- the upload ------------------------------------------------------------------------------


class _CheckedUpload:
    """A read-only stream that checks the PDF head, trailer and SHA-256 while it is read.

    It raises at end of file when a check fails, inside the store's ``put``, which then deletes
    its temporary file: a refused upload never reaches its final name (or the object store).
    """

    def __init__(self, stream: BinaryIO, expected_sha256: str):
        self._stream, self._expected = stream, expected_sha256
        self._digest = hashlib.sha256()
        self._head, self._tail, self.size = b"", b"", 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        if chunk:
            if len(self._head) < len(PDF_MAGIC):
                self._head += chunk[: len(PDF_MAGIC) - len(self._head)]
                if not PDF_MAGIC.startswith(self._head):
                    raise _refusal(UnsupportedMediaType(), "not_pdf")
            self._digest.update(chunk)
            self.size += len(chunk)
            self._tail = (self._tail + chunk)[-TRAILER_WINDOW:]
            return chunk
        if self.size == 0:
            raise _refusal(BadRequest("The file is empty."), "empty_file")
        if self._head != PDF_MAGIC:
            raise _refusal(UnsupportedMediaType(), "not_pdf")
        if b"%%EOF" not in self._tail:
            raise _refusal(UnsupportedMediaType("The PDF is incomplete (no end-of-file marker)."), "truncated_pdf")
        if not hmac.compare_digest(self._digest.hexdigest(), self._expected):
            raise _refusal(ChecksumMismatch(), "checksum_mismatch")
        return chunk


def _store(stream: BinaryIO, meta: PublishMetadata, policy: PublishPolicy) -> int:
    try:
        stored = policy.store.put(_CheckedUpload(stream, meta.sha256), limit=policy.max_bytes)
    except OverflowError:
        raise _refusal(PayloadTooLarge(f"The file is larger than {policy.max_bytes // (1024 * 1024)} MiB."), "too_large") from None
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The store removed its temporary file; no row is written: the publisher may simply retry.
        raise _refusal(StorageFull(), "storage_full") from None
    return stored.size


# --- publishing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishPolicy:
    store: Store
    max_bytes: int
    auto_create_reports: bool

    @classmethod
    def from_app(cls, app: Flask) -> PublishPolicy:
        settings = app.config["NBPRESS"]
        return cls(store_for(app), settings["MAX_UPLOAD_MB"] * 1024 * 1024, settings["AUTO_CREATE_REPORTS"])


@dataclass(frozen=True)
class PublishResult:
    publication: Publication
    created: bool  # False: this run was published before and that publication is returned


def _find_report(slug: str) -> Report | None:
    return db.session.scalars(select(Report).where(Report.slug == slug)).first()


def _find_run(report_id: int, run_id: str) -> Publication | None:
    return db.session.scalars(select(Publication).where(Publication.report_id == report_id, Publication.run_id == run_id)).first()


def _same_run(existing: Publication, meta: PublishMetadata) -> Publication:
    if existing.sha256 != meta.sha256:
        raise _refusal(Conflict(f"Run {meta.run_id} of {meta.report} was already published with different content."), "run_conflict")
    return existing


def _audience_ids(audience: Audience | None) -> tuple[list[int], list[int]]:
    """Group and user ids named by the request; 400 naming every unknown one."""
    if audience is None:
        return [], []
    groups = {g.name: g.id for g in db.session.scalars(select(Group).where(Group.name.in_(audience.groups)))} if audience.groups else {}
    users = {u.email: u.id for u in db.session.scalars(select(User).where(User.email.in_(audience.users)))} if audience.users else {}
    unknown = [f"group {name!r}" for name in audience.groups if name not in groups]
    unknown += [f"user {email!r}" for email in audience.users if email not in users]
    if unknown:
        raise _refusal(BadRequest(f"Unknown audience: {', '.join(unknown[:10])}. Create them on the portal first."), "unknown_audience")
    return [groups[n] for n in audience.groups], [users[e] for e in audience.users]


def _grant_variant(report: Report, label: str, group_ids: list[int], user_ids: list[int]) -> None:
    """The spec's per-variant audience as variant grants: created once, audited; existing ones kept."""
    subjects = [("group_id", gid) for gid in group_ids] + [("user_id", uid) for uid in user_ids]
    for column, value in subjects:
        found = db.session.scalar(select(Grant.id).where(
            Grant.report_id == report.id, Grant.variant == label, getattr(Grant, column) == value))
        if found is None:
            db.session.add(Grant(report_id=report.id, variant=label, **{column: value}))
            audit.record("grant_added", "ok", by="publish", report_id=report.id, variant=label, **{column: value})


def _next_version(report_id: int, label: str, period: str) -> int:
    latest = db.session.scalar(select(func.max(Publication.version)).where(
        Publication.report_id == report_id, Publication.variant_label == label, Publication.period_label == period))
    return (latest or 0) + 1


def _write(meta: PublishMetadata, size: int, publisher: PublisherToken, audience: tuple[list[int], list[int]],
           variant_audience: tuple[list[int], list[int]]) -> PublishResult:
    """Create the report (if allowed), the publication and its grants; retried on a lost race."""
    label = variant_label(meta.variant)
    for _ in range(WRITE_ATTEMPTS):
        try:
            report = _find_report(meta.report)
            if report is None:
                report = Report(slug=meta.report, title=meta.title or meta.report.replace("_", " ").title(), description=meta.description or "",
                                project=publisher.project)
                db.session.add(report)
                db.session.flush()
            authorize_project(publisher, report, take=True)  # again: the report may have been made by another token meanwhile
            existing = _find_run(report.id, meta.run_id)
            if existing is not None:
                publisher.last_used_at = utcnow()
                return PublishResult(_same_run(existing, meta), created=False)
            if not report.title:  # created empty by an operator's grant before its first publication
                report.title = meta.title or meta.report.replace("_", " ").title()
                report.description = report.description or meta.description or ""
            publication = Publication(
                report_id=report.id, version=_next_version(report.id, label, meta.period_label), parameters=meta.parameters,
                period_label=meta.period_label, variant=meta.variant, variant_label=label,
                search_text=search_text(meta.period_label, label, meta.parameters), run_id=meta.run_id,
                sha256=meta.sha256, size=size, pages=meta.pages, publisher_id=publisher.id,
                summary=meta.summary or "", attach_pdf=bool(meta.notify and meta.notify.attach_pdf),
            )
            db.session.add(publication)
            db.session.flush()
            group_ids, user_ids = audience
            db.session.add_all(
                [Grant(publication_id=publication.id, group_id=gid) for gid in group_ids]
                + [Grant(publication_id=publication.id, user_id=uid) for uid in user_ids]
            )
            _grant_variant(report, label, *variant_audience)
            publisher.last_used_at = utcnow()
            db.session.flush()
            return PublishResult(publication, created=True)
        except IntegrityError:
            # Another publisher stored the same report, run or version first: look again.
            db.session.rollback()
    raise _refusal(Conflict("The report was being published by others at the same moment; try again."), "write_contention")


ReadUpload = Callable[[], tuple[str | None, BinaryIO | None]]


def publish(token: str | None, read_upload: ReadUpload, policy: PublishPolicy) -> PublishResult:
    """Check and store one upload; audit it either way. The caller commits (also on refusal).

    ``read_upload()`` returns the metadata text and the file stream; it is called only once the
    token is accepted, so an unknown caller never makes the portal read a large body.
    """
    detail: dict[str, Any] = {}
    publisher: PublisherToken | None = None
    try:
        publisher = authenticate_publisher(token)
        detail["publisher"] = publisher.name
        metadata_text, upload = read_upload()
        meta = parse_metadata(metadata_text)
        detail.update(report=meta.report, run_id=meta.run_id, sha256=meta.sha256)
        report = _find_report(meta.report)
        if report is None and not policy.auto_create_reports:
            message = (f"No report named {meta.report!r} on this portal, and reports are not created "
                       "automatically; ask an operator to create it.")
            raise _refusal(NotFound(message, code="unknown_report"), "unknown_report")
        if report is not None:
            authorize_project(publisher, report, take=True)  # 403 wrong_project before anything is read or stored
        audience, variant_audience = _audience_ids(meta.audience), _audience_ids(meta.variant_audience)
        existing = _find_run(report.id, meta.run_id) if report is not None else None
        if existing is not None:
            _same_run(existing, meta)  # 409 before anything is stored when the content differs
        if existing is not None and policy.store.has(existing.sha256):
            publisher.last_used_at = utcnow()
            result = PublishResult(existing, created=False)  # nothing to read: the bytes were checked the first time
        else:  # a new run, or a re-publish that restores a file the store lost
            if upload is None:
                raise _refusal(BadRequest("Send the PDF in a multipart part named 'file'."), "no_file")
            size = _store(upload, meta, policy)
            result = _write(meta, size, publisher, audience, variant_audience)
    except HTTPError as exc:
        db.session.rollback()
        if publisher is not None:
            publisher.last_used_at = utcnow()
        audit.record("publish", "refused", reason=getattr(exc, "audit_reason", exc.code), status=exc.status, **detail)
        raise
    publication = result.publication
    audit.record("publish", "ok", publication=publication.public_id, version=publication.version, variant=publication.variant_label,
                 created=result.created, **detail)
    return result
