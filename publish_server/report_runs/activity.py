"""A report's activity for its owners, operators and admins: schedule, next fire times, last runs,
and a failed run's notebook (stored gzip by the worker, served in a sandbox)."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import zlib
from dataclasses import dataclass

from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..models import Report, ReportProfile, RunLog

__all__ = ["RunRow", "Activity", "Watched", "activity_of", "watched_reports", "notebook_html", "NOTEBOOK_CSP", "LAST_RUNS"]

LAST_RUNS = 50
NOTEBOOK_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True)
class RunRow:
    run_id: str
    status: str
    trigger: str
    started_at: dt.datetime
    duration_seconds: float | None
    error_line: str
    has_notebook: bool

    @property
    def duration(self) -> str:
        if self.duration_seconds is None:
            return "—"
        seconds = int(round(self.duration_seconds))
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


@dataclass(frozen=True)
class Activity:
    schedule_text: str  # "" when unscheduled
    next_runs: list[dt.datetime]
    runs: list[RunRow]


def _moment(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def activity_of(report: Report, profile: ReportProfile | None, *, last: int = LAST_RUNS) -> Activity:
    rows = db.session.execute(
        select(RunLog.run_id, RunLog.status, RunLog.trigger, RunLog.started_at, RunLog.duration_seconds, RunLog.error_line,
               RunLog.notebook_html.is_not(None))
        .where(RunLog.report_id == report.id).order_by(RunLog.started_at.desc(), RunLog.id.desc()).limit(last))
    schedule = (profile.schedule or {}) if profile is not None else {}
    next_runs = [m for m in (_moment(t) for t in ((profile.next_runs or []) if profile is not None else [])) if m]
    return Activity(schedule_text=str(schedule.get("text") or ""), next_runs=next_runs,
                    runs=[RunRow(*row[:6], has_notebook=bool(row[6])) for row in rows])


@dataclass(frozen=True)
class Watched:
    """One line of the runs overview: a report its viewer may watch, with its last run."""

    report: Report
    schedule_text: str
    next_run: dt.datetime | None
    last: RunRow | None


def watched_reports(user) -> list[Watched]:
    """The reports whose activity ``user`` may see (owners: theirs by address; operators and
    admins: every report the toolkit described or reported a run of), by title."""
    if not user.active:
        return []
    everything = user.is_admin or user.is_operator
    profiles = {p.report_id: p for p in db.session.scalars(select(ReportProfile))}
    if everything:
        ids = set(profiles) | set(db.session.scalars(select(RunLog.report_id).distinct()))
    else:
        address = user.email.lower()
        ids = {rid for rid, p in profiles.items() if address in {o.lower() for o in p.owners or []}}
    if not ids:
        return []
    reports = db.session.scalars(select(Report).where(Report.id.in_(ids)).order_by(Report.title, Report.slug)).all()
    found = []
    for report in reports:
        shown = activity_of(report, profiles.get(report.id), last=1)
        found.append(Watched(report=report, schedule_text=shown.schedule_text,
                             next_run=shown.next_runs[0] if shown.next_runs else None,
                             last=shown.runs[0] if shown.runs else None))
    return found


def notebook_html(report: Report, run_id: str) -> bytes:
    """A run's stored notebook as HTML bytes; 404 when there is none."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise NotFound()
    stored = db.session.scalar(select(RunLog.notebook_html).where(RunLog.report_id == report.id, RunLog.run_id == run_id))
    if not stored:
        raise NotFound()
    try:
        return gzip.decompress(stored)
    except (OSError, EOFError, zlib.error):
        raise NotFound() from None  # not what the worker stores: nothing to show
