"""What the worker tells the portal about a report: its profile, its runs, a failed run's notebook.

Each is an upsert (sent again, it replaces what was stored), audited, and left for the caller
to commit. The project rule (:mod:`projects`) is applied to every report touched here.
"""

from __future__ import annotations

import gzip
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..errors import BadRequest, Conflict, NotFound
from ..extensions import db
from ..models import Publication, PublisherToken, Report, ReportProfile, RunLog, RunRequest, utcnow
from .projects import authorize
from .shapes import ParameterIn, ProfileIn, RunLogIn, parse_instant

__all__ = ["find_report", "report_for_profile", "save_profile", "save_run_log", "save_notebook", "notebook_html"]


def find_report(token: PublisherToken, slug: str) -> Report:
    """An existing report this token may act on: 404 ``unknown_report``, 403 ``wrong_project``."""
    report = db.session.scalars(select(Report).where(Report.slug == slug)).first()
    if report is None:
        raise NotFound(f"No report named {slug!r} on this portal (publish or describe it first).", code="unknown_report")
    authorize(token, report)
    return report


def report_for_profile(token: PublisherToken, slug: str, title: str | None, *, auto_create: bool) -> Report:
    """The report described, created (for the token's project) when new and reports may be created."""
    for _ in range(3):
        report = db.session.scalars(select(Report).where(Report.slug == slug)).first()
        if report is not None:
            authorize(token, report, take=True)
            if not report.title and title:  # created empty by an operator's grant
                report.title = title
            return report
        if not auto_create:
            raise NotFound(f"No report named {slug!r} on this portal, and reports are not created automatically; "
                           "ask an operator to create it.", code="unknown_report")
        try:
            with db.session.begin_nested():
                report = Report(slug=slug, title=title or slug.replace("_", " ").title(), description="", project=token.project)
                db.session.add(report)
            audit.record("report_created", "ok", report=slug, by="profile", publisher=token.name)
            return report
        except IntegrityError:  # another request created it first: take that one
            continue
    raise Conflict("The report was being created by others at the same moment; try again.")


def _parameter(p: ParameterIn) -> dict[str, Any]:
    stored: dict[str, Any] = {"name": p.name, "label": p.label, "type": p.type.model_dump(exclude_none=True), "required": p.required}
    if not p.required and "default" in p.model_fields_set:
        stored["default"] = p.default
    return stored


def save_profile(token: PublisherToken, report: Report, body: ProfileIn) -> ReportProfile:
    values = dict(parameters=[_parameter(p) for p in body.parameters], schedule=body.schedule.model_dump(exclude_none=True),
                  next_runs=[parse_instant(t).isoformat(timespec="seconds") + "Z" for t in body.next_runs],
                  owners=body.owners, runnable=body.runnable, publisher_id=token.id, updated_at=utcnow())
    for _ in range(3):
        profile = db.session.get(ReportProfile, report.id, populate_existing=True)
        try:
            with db.session.begin_nested():
                if profile is None:
                    profile = ReportProfile(report_id=report.id, **values)
                    db.session.add(profile)
                else:
                    for name, value in values.items():
                        setattr(profile, name, value)
            break
        except IntegrityError:  # two workers described a new report at once: update the other's row
            continue
    else:
        raise Conflict("The report was being described by others at the same moment; try again.")
    token.last_used_at = utcnow()
    audit.record("run_profile", "ok", report=report.slug, publisher=token.name, parameters=len(body.parameters),
                 scheduled=bool(body.schedule.cron), runnable=body.runnable)
    db.session.flush()
    return profile


def _by_public_id(model, public_id: str | None, report: Report, what: str):
    if public_id is None:
        return None
    found = db.session.scalars(select(model).where(model.public_id == public_id, model.report_id == report.id)).first()
    if found is None:
        raise BadRequest(f"{what}: no {what} {public_id!r} of report {report.slug!r}")
    return found


def save_run_log(token: PublisherToken, report: Report, body: RunLogIn) -> RunLog:
    """Create or update the record of run ``body.run_id`` of ``report``."""
    request = _by_public_id(RunRequest, body.request, report, "request")
    publication = _by_public_id(Publication, body.publication, report, "publication")
    values = dict(status=body.status, trigger=body.trigger, started_at=parse_instant(body.started_at),
                  finished_at=parse_instant(body.finished_at) if body.finished_at else None,
                  duration_seconds=body.duration_seconds, error_line=body.error_line, parameters=body.parameters,
                  request_id=request.id if request else None, publication_id=publication.id if publication else None,
                  updated_at=utcnow())
    for _ in range(3):
        row = db.session.scalars(select(RunLog).where(RunLog.report_id == report.id, RunLog.run_id == body.run_id)).first()
        try:
            with db.session.begin_nested():
                if row is None:
                    row = RunLog(report_id=report.id, run_id=body.run_id, **values)
                    db.session.add(row)
                else:
                    for name, value in values.items():
                        setattr(row, name, value)
            break
        except IntegrityError:  # the same run reported twice at once: update the other's row
            row = None
    else:
        raise Conflict("The run was being reported by others at the same moment; try again.")
    token.last_used_at = utcnow()
    audit.record("run_log", "ok", report=report.slug, run_id=body.run_id, status=body.status, trigger=body.trigger,
                 publisher=token.name)
    return row


def save_notebook(token: PublisherToken, report: Report, run_id: str, html: bytes) -> RunLog:
    """Store a run's executed notebook (HTML, masked by the toolkit) gzipped on its run record."""
    row = db.session.scalars(select(RunLog).where(RunLog.report_id == report.id, RunLog.run_id == run_id)).first()
    if row is None:
        raise NotFound(f"No run {run_id!r} of report {report.slug!r}: report the run first.", code="unknown_run")
    row.notebook_html = gzip.compress(html, compresslevel=6)
    row.updated_at = utcnow()
    token.last_used_at = utcnow()
    audit.record("run_notebook", "ok", report=report.slug, run_id=run_id, size=len(html), publisher=token.name)
    return row


def notebook_html(row: RunLog) -> bytes | None:
    """The stored notebook as HTML bytes (for the owners' page), or None."""
    return gzip.decompress(row.notebook_html) if row.notebook_html else None
