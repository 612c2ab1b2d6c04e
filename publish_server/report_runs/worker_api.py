"""The worker-facing API of runs from the portal (blueprint ``report_runs_worker``, under /api/v1).

Every view takes a publisher token (``Authorization: Bearer``), never a user's JWT, and acts only
for the token's project (403 ``wrong_project``). Refusals are audited like publishing's: the
event of the view with outcome ``refused`` and the reason. Progress reports are not audited
(one every few seconds per run); everything else is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import audit
from ..errors import BadRequest, HTTPError, NotFound, PayloadTooLarge, UnsupportedMediaType
from ..extensions import db
from ..models import PublisherToken
from ..openapi import ErrorOut, operation, parse_body
from ..publishing import REPORT_SLUG, authenticate_publisher
from . import claims, profiles
from .shapes import (
    PUBLIC_ID, RUN_ID, ClaimIn, ClaimOut, FinishIn, FinishOut, ProfileIn, ProfileOut, ProgressIn, ProgressOut, RunLogIn,
    RunLogOut,
)

__all__ = ["bp"]

bp = Blueprint("report_runs_worker", __name__, url_prefix="/api/v1")

PROFILE_MAX_BYTES = 1024 * 1024  # 200 parameters with 100 choices each fit; the default 64 KiB would not
_COMMON = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _publisher_view(event: str, *, audit_refusals: bool = True) -> Callable:
    """Authenticate the publisher token and hand it to the view; audit and commit a refusal."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def run(**kwargs):
            token: PublisherToken | None = None
            try:
                token = authenticate_publisher(_bearer())
                return view(token, **kwargs)
            except HTTPError as exc:
                db.session.rollback()
                if audit_refusals or exc.status in (401, 403):
                    detail = {"publisher": token.name} if token is not None else {}
                    audit.record(event, "refused", reason=getattr(exc, "audit_reason", exc.code), status=exc.status,
                                 path=request.path[:200], **detail)
                    db.session.commit()
                raise

        return run

    return wrap


def _checked(value: str, pattern: str) -> str:
    """A path part of the shape the portal issues, else 404 (PostgreSQL refuses NUL: not a 500)."""
    if not re.fullmatch(pattern, value):
        raise NotFound()
    return value


# --- describing reports and runs -----------------------------------------------------------------


@bp.put("/reports/<slug>/profile")
@operation("Describe a report: parameter schema, schedule, next runs, owners (publisher token; creates the report when new)",
           body=ProfileIn, responses={200: ProfileOut, **_COMMON, 409: ErrorOut, 503: ErrorOut}, security="publisher", tags=("runs",))
@_publisher_view("run_profile")
def put_profile(token: PublisherToken, slug: str):
    slug = _checked(slug, REPORT_SLUG)
    body = parse_body(ProfileIn, max_bytes=PROFILE_MAX_BYTES)
    report = profiles.report_for_profile(token, slug, body.title, auto_create=current_app.config["NBPRESS"]["AUTO_CREATE_REPORTS"])
    profile = profiles.save_profile(token, report, body)
    db.session.commit()
    return jsonify(ProfileOut(report=report.slug, updated_at=profile.updated_at.isoformat(timespec="seconds") + "Z").model_dump())


@bp.post("/reports/<slug>/runs")
@operation("Record a run of a report, or update its record (publisher token)", body=RunLogIn,
           responses={200: RunLogOut, **_COMMON, 409: ErrorOut}, security="publisher", tags=("runs",))
@_publisher_view("run_log")
def post_run(token: PublisherToken, slug: str):
    report = profiles.find_report(token, _checked(slug, REPORT_SLUG))
    body = parse_body(RunLogIn)
    row = profiles.save_run_log(token, report, body)
    db.session.commit()
    return jsonify(RunLogOut(report=report.slug, run_id=row.run_id, status=row.status).model_dump())


@bp.put("/reports/<slug>/runs/<run_id>/notebook")
@operation("Upload a failed run's executed notebook as HTML, outputs masked (publisher token; at most RUN_NOTEBOOK_MAX_MB)",
           raw_body="text/html", responses={204: None, **_COMMON, 413: ErrorOut, 415: ErrorOut}, security="publisher",
           tags=("runs",))
@_publisher_view("run_notebook")
def put_notebook(token: PublisherToken, slug: str, run_id: str):
    report = profiles.find_report(token, _checked(slug, REPORT_SLUG))
    run_id = _checked(run_id, RUN_ID)
    if request.mimetype != "text/html":
        raise UnsupportedMediaType("Send the notebook as text/html.")
    html = _read_capped(current_app.config["NBPRESS"]["RUN_NOTEBOOK_MAX_MB"] * 1024 * 1024)
    profiles.save_notebook(token, report, run_id, html)
    db.session.commit()
    return "", 204


def _read_capped(limit: int) -> bytes:
    """The body, refused (413) once it is over ``limit``: a declared length before reading, else while reading."""
    too_large = PayloadTooLarge(f"The notebook is larger than {limit // (1024 * 1024)} MiB.")
    if (request.content_length or 0) > limit:
        raise too_large
    # This cap, not the app's (MAX_UPLOAD_MB + 1, for PDFs): a notebook cap may be the larger.
    request.max_content_length = limit + 1
    chunks, size = [], 0
    try:
        while chunk := request.stream.read(min(1024 * 1024, limit + 1 - size) or 1):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise too_large
    except RequestEntityTooLarge:
        raise too_large from None
    if not size:
        raise BadRequest("The notebook is empty.")
    return b"".join(chunks)


# --- run requests --------------------------------------------------------------------------------


@bp.post("/run-requests/claim")
@operation("Take the oldest queued run request of this token's reports, with a lease (204: none queued)", body=ClaimIn,
           responses={200: ClaimOut, 204: None, 400: ErrorOut}, security="publisher", tags=("runs",))
@_publisher_view("run_claimed", audit_refusals=False)
def claim_request(token: PublisherToken):
    body = parse_body(ClaimIn)
    claimed = claims.claim(token, body.worker, body.reports)
    if claimed is None:
        return "", 204
    req = claimed.request
    return jsonify(ClaimOut(request=dict(id=req.public_id, report=claimed.report, parameters=req.parameters or {},
                                         attempt=req.attempts, lease_seconds=claimed.lease_seconds,
                                         requested_by=claimed.requested_by)).model_dump())


@bp.post("/run-requests/<public_id>/progress")
@operation("Report a run request's stage and renew its lease; tells whether the requester cancelled (409 lease_lost)",
           body=ProgressIn, responses={200: ProgressOut, **_COMMON, 409: ErrorOut}, security="publisher", tags=("runs",))
@_publisher_view("run_progress", audit_refusals=False)  # chatty: only refused credentials are audited
def request_progress(token: PublisherToken, public_id: str):
    body = parse_body(ProgressIn)  # the body first: a malformed one is a 400 whatever the id
    found = claims.find_request(token, _checked(public_id, PUBLIC_ID))
    cancel, lease_seconds = claims.progress(token, found, body.worker, body.stage)
    return jsonify(ProgressOut(cancel=cancel, lease_seconds=lease_seconds).model_dump())


@bp.post("/run-requests/<public_id>/finish")
@operation("End a run request: succeeded, failed (transient: queued again while tries are left) or cancelled (409 lease_lost)",
           body=FinishIn, responses={200: FinishOut, **_COMMON, 409: ErrorOut}, security="publisher", tags=("runs",))
@_publisher_view("run_finished")
def finish_request(token: PublisherToken, public_id: str):
    body = parse_body(FinishIn)  # the body first: a malformed one is a 400 whatever the id
    found = claims.find_request(token, _checked(public_id, PUBLIC_ID))
    return jsonify(FinishOut(status=claims.finish(token, found, body)).model_dump())
