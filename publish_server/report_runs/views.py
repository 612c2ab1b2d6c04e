"""The run pages (blueprint ``report_runs``): the run form, a request's status, a report's activity.

``/reports/<slug>/run`` draws the form from the report's parameter schema and queues the run;
``/requests/<id>`` follows it (``/requests/<id>/status.json`` every 2 s from
``static/run_status.js``; without JavaScript a refresh link does the same). Who may do what is
:mod:`.permissions`: a report or request someone may not run or see answers 404, as if absent.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from flask_jwt_extended import get_current_user

from .. import audit
from ..errors import Conflict, NotFound, TooManyRequests
from ..extensions import db
from ..models import Report, User
from ..signin.session import login_required_page
from . import activity as report_activity
from . import form_fields, run_requests
from .parameters import read_schema
from .permissions import find_report, find_request, may_run, may_see_runs, profile_of

__all__ = ["bp"]

bp = Blueprint("report_runs", __name__)

POLL_SECONDS = 2


@bp.app_template_global("run_links")
def _run_links(user: User, report: Report) -> dict[str, bool]:
    """For the report page: whether to show the Run button and the Activity link."""
    profile = profile_of(report)
    return {"run": profile is not None and profile.runnable and may_run(user, report),
            "activity": may_see_runs(user, report, profile)}


@bp.app_template_filter("run_value")
def _run_value(value) -> str:
    """A parameter's JSON value in words: lists joined, None as none, booleans as yes/no."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_run_value(v) for v in value) or "(empty list)"
    return str(value)


@bp.app_template_global("my_run_requests")
def _my_run_requests(user: User):
    return run_requests.my_requests(user)


def _user() -> User:
    user = get_current_user()  # loaded by login_required_page
    if user is None:
        raise NotFound()
    return user


def _form_page(report: Report, profile, fields, *, status: int = 200, problem: str = ""):
    return render_template("run_form.html", user=_user(), report=report, profile=profile, fields=fields,
                           problem=problem), status


@bp.get("/reports/<slug>/run")
@login_required_page
def run_form(slug: str):
    user = _user()
    report = find_report(slug)
    if not may_run(user, report):
        raise NotFound()
    profile = profile_of(report)
    schema = read_schema(profile.parameters) if profile is not None and profile.runnable else []
    return _form_page(report, profile, form_fields.fields_for(schema))


@bp.post("/reports/<slug>/run")
@login_required_page
def run_submit(slug: str):
    user = _user()
    report = find_report(slug)
    if not may_run(user, report):
        audit.record("run_requested", "refused", user_id=user.id, via="page", reason="not_found", requested=slug[:64])
        db.session.commit()
        raise NotFound()
    profile = profile_of(report)
    if profile is None or not profile.runnable:
        raise Conflict("This report cannot be run from the portal.", code="not_runnable")
    schema = read_schema(profile.parameters)
    values, errors = form_fields.read_form(schema, request.form)
    if errors:
        return _form_page(report, profile, form_fields.fields_for(schema, request.form, errors), status=400,
                          problem="Some values are not valid; see the messages under the fields.")
    try:
        asked = run_requests.ask(user, report, values, current_app.config["NBPRESS"])
    except TooManyRequests as exc:
        audit.record("run_requested", "refused", user_id=user.id, via="page", reason="run_limit", report=report.slug)
        db.session.commit()
        return _form_page(report, profile, form_fields.fields_for(schema, request.form), status=429, problem=exc.message)
    audit.record("run_requested", "ok", user_id=user.id, via="page", report=report.slug, request=asked.public_id)
    db.session.commit()
    return redirect(url_for("report_runs.status_page", public_id=asked.public_id), code=303)


@bp.get("/requests/<public_id>")
@login_required_page
def status_page(public_id: str):
    user = _user()
    found = find_request(user, public_id)
    report = db.session.get(Report, found.report_id)
    return render_template("run_status.html", user=user, report=report, run=run_requests.request_json(found),
                           ended=found.status in run_requests.ENDED, poll_seconds=POLL_SECONDS)


@bp.get("/requests/<public_id>/status.json")
@login_required_page
def status_json(public_id: str):
    return jsonify(run_requests.request_json(find_request(_user(), public_id)))


@bp.post("/requests/<public_id>/cancel")
@login_required_page
def cancel(public_id: str):
    user = _user()
    try:
        run_requests.cancel_audited(user, find_request(user, public_id), via="page")
    except Conflict:
        pass  # the status page shows how it ended
    return redirect(url_for("report_runs.status_page", public_id=public_id), code=303)


def _watched_report(slug: str) -> tuple[User, Report, object]:
    user = _user()
    report = find_report(slug)
    profile = profile_of(report)
    if not may_see_runs(user, report, profile):
        raise NotFound()
    return user, report, profile


@bp.get("/activity")
@login_required_page
def overview():
    """Every report the viewer may watch: schedule, next run, last run. Recipients see an empty page."""
    user = _user()
    return render_template("runs_overview.html", user=user, watched=report_activity.watched_reports(user))


@bp.app_template_global("watches_runs")
def _watches_runs(user: User) -> bool:
    """Whether the site's navigation offers the runs overview (operators and admins; owners reach
    it from their account page)."""
    return bool(user.active and (user.is_admin or user.is_operator))


@bp.app_template_global("owns_reports")
def _owns_reports(user: User) -> bool:
    return bool(report_activity.watched_reports(user))


@bp.get("/reports/<slug>/activity")
@login_required_page
def activity(slug: str):
    user, report, profile = _watched_report(slug)
    return render_template("run_activity.html", user=user, report=report,
                           activity=report_activity.activity_of(report, profile), last=report_activity.LAST_RUNS)


@bp.get("/reports/<slug>/runs/<run_id>/notebook")
@login_required_page
def notebook(slug: str, run_id: str):
    user, report, _ = _watched_report(slug)
    html = report_activity.notebook_html(report, run_id)
    audit.record("run_notebook_viewed", "ok", user_id=user.id, report=report.slug, run=run_id)
    db.session.commit()
    response = Response(html, mimetype="text/html")
    # The notebook's HTML came from a run: no script, no fetch, no form may act in the portal's origin.
    response.headers["Content-Security-Policy"] = report_activity.NOTEBOOK_CSP
    return response
