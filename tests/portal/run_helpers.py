"""Rows for the run pages' tests, made with the ORM: a report with a publication, its profile
(the schema the toolkit would send), read and run grants, run logs."""

from __future__ import annotations

import datetime as dt
import gzip
import re

from publish_server.extensions import db
from publish_server.models import Grant, Publication, Report, ReportProfile, RunGrant, RunLog, User, utcnow

SCHEMA = [
    {"name": "week", "label": "ISO week to report", "type": {"kind": "date", "optional": False}, "required": False, "default": "2026-11-16"},
    {"name": "regions", "label": "", "type": {"kind": "list", "optional": False, "item": {"kind": "literal", "choices": ["north", "south"], "optional": False}},
     "required": False, "default": ["north"]},
    {"name": "top", "label": "Rows in the top table", "type": {"kind": "int", "optional": False}, "required": False, "default": 10},
    {"name": "threshold", "label": "", "type": {"kind": "float", "optional": True}, "required": False, "default": None},
    {"name": "detailed", "label": "Show details", "type": {"kind": "bool", "optional": False}, "required": False, "default": False},
    {"name": "since", "label": "", "type": {"kind": "datetime", "optional": False}, "required": False, "default": "2026-11-16T06:00:00"},
    {"name": "unit", "label": "", "type": {"kind": "literal", "choices": [1, 10, 100], "optional": False}, "required": False, "default": 10},
    {"name": "title", "label": "Title line", "type": {"kind": "str", "optional": False}, "required": True},
]


def make_report(slug: str, *, schema=None, owners=(), runnable: bool = True, profile: bool = True) -> Report:
    report = Report(slug=slug, title=slug.replace("_", " ").title())
    db.session.add(report)
    db.session.flush()
    db.session.add(Publication(report=report, version=1, run_id=f"{slug}-run-1", sha256="0" * 64, size=10, pages=1))
    if profile:
        db.session.add(ReportProfile(report_id=report.id, parameters=SCHEMA if schema is None else schema,
                                     schedule={"cron": "0 6 * * MON", "timezone": "Europe/Berlin", "text": "every Monday at 06:00 (Europe/Berlin)"},
                                     next_runs=["2026-12-07T05:00:00Z", "2026-12-14T05:00:00Z"], owners=list(owners), runnable=runnable))
    db.session.commit()
    return report


def grant_read(report: Report, user: User) -> None:
    db.session.add(Grant(report_id=report.id, user_id=user.id))
    db.session.commit()


def grant_run(report: Report, *, user: User | None = None, group_id: int | None = None, read: bool = True) -> None:
    db.session.add(RunGrant(report_id=report.id, user_id=user.id if user else None, group_id=group_id))
    if read and user is not None:
        db.session.add(Grant(report_id=report.id, user_id=user.id))
    if read and group_id is not None:
        db.session.add(Grant(report_id=report.id, group_id=group_id))
    db.session.commit()


def add_run_log(report: Report, run_id: str, status: str = "failed", *, notebook: str | None = None, error_line: str = "") -> None:
    started = utcnow() - dt.timedelta(minutes=5)
    db.session.add(RunLog(report_id=report.id, run_id=run_id, status=status, trigger="schedule", started_at=started,
                          finished_at=started + dt.timedelta(seconds=83), duration_seconds=83.0, error_line=error_line,
                          parameters={}, notebook_html=gzip.compress(notebook.encode()) if notebook else None))
    db.session.commit()


def csrf_of(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def csrf_for(client) -> str:
    """The CSRF value of ``client``'s session (its cookie). Pages print it too, but the tests' app
    context, and so ``flask.g``, outlives requests: after another client signs in, a page would
    print that client's value."""
    return client.get_cookie("csrf_access_token").value


GOOD_FORM = {"week": "2026-11-23", "regions": ["north", "south"], "top": "5", "threshold": "", "detailed": "true",
             "since": "2026-11-23T06:00", "unit": "100", "title": "Week 48"}
