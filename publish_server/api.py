"""The JSON API under /api/v1: publishing, listing, downloading (blueprint ``api``).

Publishers authenticate with a publisher token, recipients with an access token from
``/api/v1/auth/login``; both travel in ``Authorization: Bearer ...``, never in cookies, so no
request here can be forged cross-site. Every view declares its contract with
:func:`~publish_server.openapi.operation`; ``/api/openapi.json`` is built from those
declarations. What a recipient may see comes only through :mod:`access`: a publication that is
not granted answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_jwt_extended import get_current_user
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select as sa_select
from werkzeug.exceptions import RequestEntityTooLarge

from . import access, audit, download_gate, publishing, withdrawal
from .mail import portal_url
from .notifications.queue import enqueue_publication
from .errors import BadRequest, HTTPError, NotFound, PayloadTooLarge, WrongProject
from .extensions import db
from .models import Publication, Report, User, utcnow
from .openapi import ErrorOut, build_document, operation, parse_body
from .pages import audited_download, search_condition
from .rate_limits import failures_per_ip, unlimited
from .report_runs.projects import authorize as authorize_project
from .signin.session import api_user_required

__all__ = ["bp", "PublicationOut", "PublishedOut", "ReadersOut", "PublicationList", "publication_json", "find_publications"]

bp = Blueprint("api", __name__, url_prefix="/api")


# --- shapes ----------------------------------------------------------------------------------


class PublicationOut(BaseModel):
    id: str = Field(description="public id of the publication (random, not guessable)")
    report: str = Field(description="report slug")
    report_title: str
    version: int = Field(ge=1)
    run_id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, description="bytes")
    pages: int | None
    period_label: str
    variant: dict[str, str] = Field(description='the run\'s variant, e.g. {"region": "north"} ({} for a report without variants)')
    variant_label: str = Field(description='its values joined by " · ", e.g. "north" ("" for none)')
    parameters: dict[str, Any]
    created_at: str = Field(json_schema_extra={"format": "date-time"}, description="UTC, ISO 8601")
    download_url: str = Field(json_schema_extra={"format": "uri-reference"}, description="path of the download, relative to the portal")
    page_url: str = Field(json_schema_extra={"format": "uri"},
                          description="the report's page on the portal: the link to give people (a browser signs in there)")
    withdrawn_at: str | None = Field(None, json_schema_extra={"format": "date-time"}, description="UTC; set once withdrawn (then reads answer 410)")
    withdrawn_reason: str | None = Field(None, description="what readers are told, once withdrawn")


class ReadersOut(BaseModel):
    count: int = Field(ge=0, description="active recipients who can read it (admins, who read everything, not counted)")
    groups: list[str] = Field(description="groups granted it, through its report or on their own")


class PublishedOut(PublicationOut):
    """The publish answer: the publication and who can read it (for the publisher only: recipients are not told)."""

    readers: ReadersOut = Field(description="who can read this publication now; count 0: nobody but admins")


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=withdrawal.REASON_MAX, description="shown to readers with the 410 answer")


class PublicationList(BaseModel):
    publications: list[PublicationOut]
    truncated: bool = Field(description="more publications match than `limit`")


class ListQuery(BaseModel):
    # Unknown parameters are refused (400 naming one): a typo such as ``limt=5`` must not pass for a default.
    model_config = ConfigDict(extra="forbid")

    report: str | None = Field(None, max_length=64, description="only this report (slug)")
    variant: str | None = Field(None, max_length=200, description='only this variant (its label, e.g. "north"; empty: publications without one)')
    q: str | None = Field(None, max_length=100, description=(
        "search in report title and slug, period label, variant label and the parameter values shown to readers; "
        "a date also finds its ISO week (2026-11-18 finds 2026-W47) and a week the dates in it"))
    limit: int = Field(100, ge=1, le=500)

    @field_validator("report", "variant", "q")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # PostgreSQL refuses NUL in text; no control character belongs in a search anyway.
        if value is not None and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("must not contain control characters")
        return value


class OpenAPIDocument(BaseModel):
    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema with its ``$defs`` inlined (a multipart body cannot point into them)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _publish_body() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["file", "metadata"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "the PDF"},
            "metadata": _inline_refs(publishing.PublishMetadata.model_json_schema()),
        },
    }


# --- services (no request in here) ----------------------------------------------------------


def _iso(moment) -> str:
    return moment.isoformat(timespec="seconds") + "Z"  # stored as naive UTC


def publication_json(publication: Publication) -> dict[str, Any]:
    return PublicationOut(
        id=publication.public_id, report=publication.report.slug, report_title=publication.report.title,
        version=publication.version, run_id=publication.run_id, sha256=publication.sha256,
        size=publication.size, pages=publication.pages, period_label=publication.period_label,
        variant=publication.variant or {}, variant_label=publication.variant_label,
        parameters=publication.parameters or {}, created_at=_iso(publication.created_at),
        download_url=url_for("api.download_publication", public_id=publication.public_id),
        page_url=page_url(publication),
        withdrawn_at=_iso(publication.withdrawn_at) if publication.withdrawn_at else None,
        withdrawn_reason=publication.withdrawn_reason,
    ).model_dump()


def page_url(publication: Publication) -> str:
    """The report's page, with the publication's variant chosen when it has one."""
    variant = {"variant": publication.variant_label} if publication.variant_label else {}
    return url_for("pages.report", slug=publication.report.slug, _external=True, **variant)


def published_json(publication: Publication) -> dict[str, Any]:
    """The publish answer: the publication (with the recipients' link) and who can read it."""
    readers = access.readers_of(publication)
    return PublishedOut(
        **publication_json(publication),
        readers=ReadersOut(count=readers.count, groups=list(readers.groups)),
    ).model_dump()


def find_publications(user: User, *, report: str | None = None, variant: str | None = None, q: str | None = None,
                      limit: int = 100) -> tuple[list[Publication], bool]:
    """What ``user`` may read, newest first, optionally one report's, one variant's or matching ``q``
    (the report page's search: :func:`pages.search_condition`)."""
    stmt = access.active(access.visible_publications(user)).order_by(None)  # withdrawn ones are left out
    if report:
        stmt = stmt.where(Report.slug == report)
    if variant is not None:
        stmt = stmt.where(Publication.variant_label == " ".join(variant.split()))
    if " ".join((q or "").split()):
        stmt = stmt.where(search_condition(q))
    stmt = stmt.order_by(Publication.created_at.desc(), Publication.version.desc()).limit(limit + 1)
    rows = list(db.session.scalars(stmt))
    return rows[:limit], len(rows) > limit


_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _visible(user: User, public_id: str) -> Publication:
    """``access.get_visible_publication`` for ids of the shape the portal issues; 404 for others.

    Checked before the database sees it: PostgreSQL refuses text with a NUL byte (a 500 otherwise).
    """
    if not _PUBLIC_ID.fullmatch(public_id):
        raise NotFound()
    return access.get_visible_publication(user, public_id)


# --- request reading -------------------------------------------------------------------------


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _read_upload() -> tuple[str | None, BinaryIO | None]:
    """The metadata text and the file stream of the multipart body (called after the token check)."""
    if request.mimetype != "multipart/form-data":
        raise BadRequest("Send multipart/form-data with a 'file' part (the PDF) and a 'metadata' part (JSON).")
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        raise PayloadTooLarge() from None
    metadata = form.get("metadata")
    if metadata is None and "metadata" in files:  # curl -F metadata=@meta.json sends it as a file
        # One byte past the cap is enough for parse_metadata to refuse it: the rest is never read.
        raw = files["metadata"].stream.read(publishing.METADATA_MAX_BYTES + 1)
        metadata = raw.decode("utf-8", errors="replace")
    upload = files.get("file")
    return metadata, (upload.stream if upload is not None else None)


def _query(model: type[ListQuery]) -> ListQuery:
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        raise BadRequest(f"{where[:64]!r}: {first['msg']}" if first["type"] == "extra_forbidden" else f"{where}: {first['msg']}") from None


# --- views -----------------------------------------------------------------------------------


@bp.get("/openapi.json")
@operation("This API's OpenAPI document", responses={200: OpenAPIDocument}, tags=("meta",))
def openapi_document():
    return jsonify(build_document(current_app))


@bp.post("/v1/publications")
@operation(
    "Publish a run's PDF (publisher token)",
    multipart=_publish_body(),
    responses={200: PublishedOut, 201: PublishedOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
               413: ErrorOut, 415: ErrorOut, 422: ErrorOut, 503: ErrorOut, 507: ErrorOut},
    security="publisher",
    tags=("publishing",),
)
def create_publication():
    """201 with the new publication; 200 with the earlier one when this run was published before."""
    try:
        result = publishing.publish(_bearer(), _read_upload, publishing.PublishPolicy.from_app(current_app))
    except HTTPError:
        db.session.commit()  # the refusal's audit row
        raise
    if result.created:  # in the same transaction: a publication is never stored without its notifications
        result.publication.link_base = portal_url()
        enqueue_publication(result.publication, digest_hour=current_app.config["NBPRESS"]["DIGEST_HOUR_UTC"])
    db.session.commit()
    return jsonify(published_json(result.publication)), 201 if result.created else 200


@bp.post("/v1/publications/<public_id>/withdraw")
@operation(
    "Withdraw a publication with a reason (publisher token); readers then get 410 Gone with the reason",
    body=WithdrawIn, responses={200: PublicationOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    security="publisher", tags=("publishing",),
)
@failures_per_ip("RATELIMIT_WITHDRAW_PER_IP")  # guessing tokens or ids stays slow
def withdraw_publication(public_id: str):
    """200 with the publication; withdrawing it again keeps the first reason (idempotent)."""
    try:
        publisher = publishing.authenticate_publisher(_bearer())
    except HTTPError as exc:
        audit.record("publication_withdrawn", "refused", reason=getattr(exc, "audit_reason", exc.code), requested=public_id[:32])
        db.session.commit()
        raise
    body = parse_body(WithdrawIn)
    found = db.session.scalars(sa_select(Publication).where(Publication.public_id == public_id)).first() if _PUBLIC_ID.fullmatch(public_id) else None
    if found is None:
        audit.record("publication_withdrawn", "refused", reason="not_found", publisher=publisher.name, requested=public_id[:32])
        db.session.commit()
        raise NotFound()
    try:
        authorize_project(publisher, found.report)
    except WrongProject:
        db.session.rollback()
        audit.record("publication_withdrawn", "refused", reason="wrong_project", publisher=publisher.name, requested=public_id[:32])
        db.session.commit()
        raise
    withdrawal.withdraw(found, body.reason, by=f"publisher {publisher.name}")
    publisher.last_used_at = utcnow()
    db.session.commit()
    return jsonify(publication_json(found))


@bp.get("/v1/publications")
@operation("List the publications you may read, newest first", query=ListQuery,
           responses={200: PublicationList, 400: ErrorOut, 403: ErrorOut}, security="bearer", tags=("publications",))
@api_user_required
def list_publications():
    args = _query(ListQuery)
    rows, truncated = find_publications(get_current_user(), report=args.report, variant=args.variant, q=args.q, limit=args.limit)
    return jsonify(PublicationList(publications=[publication_json(p) for p in rows], truncated=truncated).model_dump())


@bp.get("/v1/publications/<public_id>")
@operation("One publication's metadata (410 with the reason once withdrawn)", responses={200: PublicationOut, 403: ErrorOut, 404: ErrorOut, 410: ErrorOut}, security="bearer",
           tags=("publications",))
@api_user_required
def get_publication(public_id: str):
    publication = _visible(get_current_user(), public_id)
    access.refuse_withdrawn(publication.withdrawn_at, publication.withdrawn_reason)
    return jsonify(publication_json(publication))


@bp.get("/v1/publications/<public_id>/download")
@operation(
    "Download the PDF (conditional requests, ETag = SHA-256, byte ranges; with S3_PRESIGNED_DOWNLOADS a 303 to the object store)",
    responses={200: "application/pdf", 206: "application/pdf", 303: None, 304: None, 403: ErrorOut, 404: ErrorOut, 410: ErrorOut,
               416: None, 503: ErrorOut},
    security="bearer",
    tags=("publications",),
)
@unlimited  # no limit applies to it: the limiter does not even look
@download_gate.api_download  # the token state and the grant rule in one query
def download_publication(public_id: str, checked: download_gate.Checked):
    return audited_download(public_id, checked, via="api")
