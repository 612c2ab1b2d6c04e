"""Who may read which publication. Every list and download goes through here.

A publication with grants of its own is visible to those subjects only; one without inherits its
report's grants. A subject is a user or a group the user belongs to. Admins see everything.
A publication that is not visible does not exist for that user (404, never 403). A withdrawn
publication stays visible by id to those who could read it, and answers 410 with its reason
(lists leave it out: see :func:`active`).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import Select, and_, bindparam, or_, select

from .errors import Gone, NotFound
from .extensions import db
from .models import Grant, Membership, Publication, Report, User

__all__ = ["active", "refuse_withdrawn", "visible_publications", "get_visible_publication", "visible_reports", "Downloadable", "get_downloadable"]


def _subject_matches(user_id):
    groups = select(Membership.group_id).where(Membership.user_id == user_id).scalar_subquery()
    return or_(Grant.user_id == user_id, Grant.group_id.in_(groups))


def _visible(user_id):
    """The grant rule as a WHERE clause; ``user_id`` is a user's id or a bound parameter."""
    # Plain correlated EXISTS subqueries: cheap to build on every request (aliases are not).
    has_own = select(Grant.id).where(Grant.publication_id == Publication.id).exists()
    granted_own = select(Grant.id).where(Grant.publication_id == Publication.id, _subject_matches(user_id)).exists()
    granted_report = select(Grant.id).where(Grant.report_id == Publication.report_id, _subject_matches(user_id)).exists()
    return or_(granted_own, and_(~has_own, granted_report))


def active(query: Select) -> Select:
    """``query`` without withdrawn publications (the lists readers browse)."""
    return query.where(Publication.withdrawn_at.is_(None))


def refuse_withdrawn(withdrawn_at: dt.datetime | None, reason: str | None) -> None:
    """410 Gone with the operator's or publisher's reason, for a withdrawn publication."""
    if withdrawn_at is not None:
        raise Gone(f"This publication was withdrawn: {reason}" if reason else None)


def visible_publications(user: User) -> Select:
    query = select(Publication).join(Publication.report)
    if not user.is_admin:
        query = query.where(_visible(user.id))
    return query.order_by(Report.slug, Publication.version.desc())


def visible_reports(user: User) -> Select:
    """Reports with at least one visible publication."""
    ids = visible_publications(user).with_only_columns(Publication.report_id).order_by(None)
    return select(Report).where(Report.id.in_(ids)).order_by(Report.title)


def get_visible_publication(user: User, public_id: str) -> Publication:
    if not isinstance(public_id, str) or not (1 <= len(public_id) <= 32):
        raise NotFound()
    query = visible_publications(user).where(Publication.public_id == public_id).order_by(None)
    publication = db.session.scalars(query).first()
    if publication is None:
        raise NotFound()
    return publication


@dataclass(frozen=True, slots=True)
class Downloadable:
    """What a download needs of a publication the user may read: plain values, no ORM object."""

    public_id: str
    sha256: str
    report_slug: str
    version: int
    period_label: str
    created_at: dt.datetime
    withdrawn_at: dt.datetime | None = None
    withdrawn_reason: str | None = None


@functools.cache
def _download_statement(admin: bool):
    # Built once per process: constructing a statement and computing its cache key cost more
    # CPU than running it, and downloads are the hottest path. Same rule as visible_publications.
    query = (
        select(Publication.public_id, Publication.sha256, Report.slug, Publication.version,
               Publication.period_label, Publication.created_at, Publication.withdrawn_at,
               Publication.withdrawn_reason)
        .join(Publication.report)
        .where(Publication.public_id == bindparam("public_id"))
    )
    return query if admin else query.where(_visible(bindparam("user_id")))


def get_downloadable(user: User, public_id: str) -> Downloadable:
    """The publication ``public_id`` if ``user`` may read it, in one query; 404 otherwise, 410 if withdrawn."""
    if not isinstance(public_id, str) or not (1 <= len(public_id) <= 32):
        raise NotFound()
    params = {"public_id": public_id} if user.is_admin else {"public_id": public_id, "user_id": user.id}
    # Core execution on the session's connection: same transaction, no ORM result machinery.
    row = db.session.connection().execute(_download_statement(user.is_admin), params).first()
    if row is None:
        raise NotFound()
    found = Downloadable(*row)
    refuse_withdrawn(found.withdrawn_at, found.withdrawn_reason)
    return found
