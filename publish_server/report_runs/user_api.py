"""The run requests' JSON API for signed-in users (blueprint ``run_requests_api``, under /api).

Access tokens only (``Authorization: Bearer``), like the rest of the user API; a publisher
token is not a user and gets 401. A request someone may not see answers 404, as if absent.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_jwt_extended import get_current_user
from pydantic import BaseModel, ConfigDict, Field

from .. import audit
from ..errors import Conflict, HTTPError, NotFound
from ..extensions import db
from ..openapi import ErrorOut, operation, parse_body
from ..signin.session import api_user_required
from . import run_requests
from .parameters import read_schema, resolve
from .permissions import find_report, find_request, may_run, profile_of

__all__ = ["bp", "RunAskIn", "RunRequestOut"]

bp = Blueprint("run_requests_api", __name__, url_prefix="/api")

MAX_PARAMETERS = 200


class RunAskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict, max_length=MAX_PARAMETERS, description=(
        "values by parameter name (JSON: dates as ISO strings); the rest keep the report's defaults. "
        "Checked with the toolkit's rules: a refused value answers 400 bad_parameter with the toolkit's message"))


class RunRequestOut(BaseModel):
    id: str = Field(description="public id of the request (random)")
    report: str = Field(description="report slug")
    status: str = Field(description="queued | running | succeeded | failed | cancelled | expired")
    stage: str = Field(description="while running: the worker's last stage (claimed, execute, check, render, publish)")
    parameters: dict[str, Any] = Field(description="the checked values, JSON-typed")
    created_at: str | None = Field(json_schema_extra={"format": "date-time"}, description="UTC")
    started_at: str | None = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    error_line: str = Field(description="why it failed, expired or was queued again; empty otherwise")
    cancel_requested: bool = Field(description="a cancel was asked while it ran: the worker stops at its next step")
    publication: str | None = Field(description="public id of the new publication, once succeeded")
    page_url: str | None = Field(json_schema_extra={"format": "uri"}, description="the report's page showing it, once succeeded")


def _user():
    return get_current_user()  # loaded by api_user_required


@bp.post("/v1/reports/<slug>/run-requests")
@operation("Ask for a run of a report (needs a run grant); 429 over a limit",
           body=RunAskIn, responses={202: RunRequestOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
           security="bearer", tags=("runs",))
@api_user_required
def ask_run(slug: str):
    user = _user()
    try:
        report = find_report(slug)
        if not may_run(user, report):
            raise NotFound()
        body = parse_body(RunAskIn)
        profile = profile_of(report)
        if profile is None or not profile.runnable:
            raise Conflict("This report cannot be run from the portal.", code="not_runnable")
        values = resolve(read_schema(profile.parameters), body.parameters)
        asked = run_requests.ask(user, report, values, current_app.config["NBPRESS"])
    except HTTPError as exc:
        db.session.rollback()
        audit.record("run_requested", "refused", user_id=user.id, via="api", reason=exc.code, requested=slug[:64])
        db.session.commit()
        raise
    audit.record("run_requested", "ok", user_id=user.id, via="api", report=report.slug, request=asked.public_id)
    db.session.commit()
    return jsonify(run_requests.request_json(asked)), 202


@bp.get("/v1/run-requests/<public_id>")
@operation("A run request's status (its requester, the report's owners, operators, admins)",
           responses={200: RunRequestOut, 403: ErrorOut, 404: ErrorOut}, security="bearer", tags=("runs",))
@api_user_required
def get_run_request(public_id: str):
    return jsonify(run_requests.request_json(find_request(_user(), public_id)))


@bp.post("/v1/run-requests/<public_id>/cancel")
@operation("Cancel a run request: a queued one at once, a running one at the worker's next step; 409 once ended",
           responses={200: RunRequestOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}, security="bearer", tags=("runs",))
@api_user_required
def cancel_run_request(public_id: str):
    user = _user()
    found = find_request(user, public_id)
    run_requests.cancel_audited(user, found, via="api")
    return jsonify(run_requests.request_json(found))
