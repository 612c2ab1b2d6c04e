"""Who may ask for a report's run, and who may see its runs.

May run report R: an active user with a :class:`RunGrant` on R (to them or a group of theirs)
AND read access to R (a report grant, any variant); admins may run every report.
May see R's schedule, run history and failed notebooks: R's owners (their address in
``ReportProfile.owners``), operators and admins. Recipients see none of it.
A run request is seen by whoever asked for it and by those who may see the report's runs;
for everyone else it does not exist (404).
"""

from __future__ import annotations

import re

from sqlalchemy import or_, select

from ..errors import NotFound
from ..extensions import db
from ..publishing import REPORT_SLUG
from ..models import Grant, Membership, Report, ReportProfile, RunGrant, RunRequest, User
from .claims import sweep

__all__ = ["find_report", "profile_of", "may_run", "may_see_runs", "may_see_request", "find_request"]

_SLUG = re.compile(REPORT_SLUG)
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what models.new_public_id makes


def find_report(slug: str) -> Report:
    """The report named ``slug``; 404 for junk (checked before the database sees it) or none."""
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise NotFound()
    report = db.session.scalars(select(Report).where(Report.slug == slug)).first()
    if report is None:
        raise NotFound()
    return report


def profile_of(report: Report) -> ReportProfile | None:
    return db.session.get(ReportProfile, report.id)


def _subject(model, user: User):
    groups = select(Membership.group_id).where(Membership.user_id == user.id).scalar_subquery()
    return or_(model.user_id == user.id, model.group_id.in_(groups))


def may_run(user: User, report: Report) -> bool:
    if not user.active:
        return False
    if user.is_admin:
        return True
    run_grant = select(RunGrant.id).where(RunGrant.report_id == report.id, _subject(RunGrant, user)).exists()
    read_grant = select(Grant.id).where(Grant.report_id == report.id, _subject(Grant, user)).exists()
    return bool(db.session.scalar(select(run_grant & read_grant)))


def may_see_runs(user: User, report: Report, profile: ReportProfile | None = None) -> bool:
    """Owners, operators and admins: the schedule, the run history, failed notebooks."""
    if not user.active:
        return False
    if user.is_admin or user.is_operator:
        return True
    profile = profile if profile is not None else profile_of(report)
    return profile is not None and user.email.lower() in {o.lower() for o in profile.owners or []}


def may_see_request(user: User, run_request: RunRequest) -> bool:
    if run_request.user_id == user.id and user.active:
        return True
    return may_see_runs(user, db.session.get(Report, run_request.report_id))


def find_request(user: User, public_id: str) -> RunRequest:
    """The run request ``public_id`` if ``user`` may see it; 404 otherwise (ids are never confirmed)."""
    if not isinstance(public_id, str) or not _PUBLIC_ID.fullmatch(public_id):
        raise NotFound()
    sweep()  # a lapsed lease or a request past its queue window shows as what it now is
    found = db.session.scalars(select(RunRequest).where(RunRequest.public_id == public_id)).first()
    if found is None or not may_see_request(user, found):
        raise NotFound()
    return found
