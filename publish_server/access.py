"""Who may read which publication. Every list and download goes through here.

The one rule (README, ``grant --help``, the publish answer's ``readers`` all say the same):
a report grant covers every variant and version of the report, published before or after the
grant, with or without an audience of its own; a variant grant (``grant --report R --variant
north``, or a spec's ``audience.by`` for a report with ``variant_by``) covers every version of
that one variant; a publication grant (an operator's ``grant --publication`` or the audience a
publisher names) adds readers to that one publication and takes none away.
A subject is a user or a group the user belongs to. Admins see everything.
A publication that is not visible does not exist for that user (404, never 403).
A withdrawn publication stays visible by id to those who could read it, and answers 410 with its
reason (lists leave it out: see :func:`active`).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select

from .errors import Gone, NotFound
from .extensions import db
from .models import Grant, Group, Membership, Publication, Report, User

__all__ = ["active", "refuse_withdrawn", "visible_publications", "get_visible_publication", "visible_reports", "Downloadable",
           "get_downloadable", "download_columns", "readable_by", "Readers", "readers_of", "report_readers", "reader_ids"]


def _subject_matches(user_id):
    # correlate_except: when ``user_id`` is a column (``users.id`` of an enclosing query), that
    # users row is the one meant. Auto-correlation does not reach two levels up: it would add a
    # users table of its own here, and any member of any granted group would match.
    groups = select(Membership.group_id).where(Membership.user_id == user_id).correlate_except(Membership).scalar_subquery()
    return or_(Grant.user_id == user_id, Grant.group_id.in_(groups))


def _visible(user_id):
    """The grant rule as a WHERE clause; ``user_id`` is a user's id or a bound parameter.

    A publication is visible to whoever holds a grant on it, on its report (``variant`` NULL:
    every variant and version), or on its report's variant (every version of that variant).
    Grants only add: an own audience or a variant grant never hides a publication from a report grant.
    """
    # Plain correlated EXISTS subqueries, one per index they can use: cheap to build on every
    # request (aliases are not), and the planner keeps its (report_id, ...) and publication lookups.
    granted_own = select(Grant.id).where(Grant.publication_id == Publication.id, _subject_matches(user_id)).exists()
    granted_report = select(Grant.id).where(
        Grant.report_id == Publication.report_id,
        or_(Grant.variant.is_(None), Grant.variant == Publication.variant_label),
        _subject_matches(user_id),
    ).exists()
    return or_(granted_own, granted_report)


def readable_by(user_id, role) -> ColumnElement[bool]:
    """The grant rule with its one exception (admins read everything), for a statement that reads
    the user's ``role`` and ``id`` itself (the download check: :mod:`download_gate`)."""
    return or_(role == "admin", _visible(user_id))


def reader_ids(publication_id) -> Select:
    """``SELECT users.id`` of the active recipients (admins, who read everything, left out) who can
    read the publication ``publication_id`` under the grant rule: the notifications' audience."""
    return (select(User.id).join(Publication, Publication.id == publication_id)
            .where(_visible(User.id), User.active.is_(True), User.role != "admin"))


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
    variant_label: str = ""


def download_columns() -> tuple:
    """The columns a :class:`Downloadable` is made of, in its fields' order."""
    return (Publication.public_id, Publication.sha256, Report.slug, Publication.version, Publication.period_label,
            Publication.created_at, Publication.withdrawn_at, Publication.withdrawn_reason, Publication.variant_label)


@functools.cache
def _download_statement(admin: bool):
    # Built once per process: constructing a statement and computing its cache key cost more
    # CPU than running it, and downloads are the hottest path. Same rule as visible_publications.
    query = (
        select(*download_columns())
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


@dataclass(frozen=True, slots=True)
class Readers:
    """Who can read a publication under the grant rule: active recipients (admins, who read
    everything, are not counted: a publication only admins can read has no readers) and the
    groups granted it, directly or through its report."""

    count: int
    groups: tuple[str, ...]


def _readers(grants: Select) -> Readers:
    rows = db.session.execute(grants).all()
    group_ids = {g for _, g in rows if g is not None}
    user_ids = {u for u, _ in rows if u is not None}
    members = select(Membership.user_id).where(Membership.group_id.in_(group_ids)) if group_ids else None
    admitted = User.id.in_(user_ids) if members is None else or_(User.id.in_(user_ids), User.id.in_(members))
    count = db.session.scalar(select(func.count(User.id)).where(admitted, User.active.is_(True), User.role != "admin"))
    names = db.session.scalars(select(Group.name).where(Group.id.in_(group_ids)).order_by(Group.name)) if group_ids else []
    return Readers(count=count or 0, groups=tuple(names))


def readers_of(publication: Publication) -> Readers:
    """Who can read ``publication``: its own grants, its report's and its variant's (the rule of :func:`_visible`)."""
    return _readers(select(Grant.user_id, Grant.group_id).where(
        or_(Grant.publication_id == publication.id,
            and_(Grant.report_id == publication.report_id,
                 or_(Grant.variant.is_(None), Grant.variant == publication.variant_label)))))


def report_readers(report: Report, variant: str | None = None) -> Readers:
    """Who can read every version of ``report`` (its report grants), or of its ``variant`` (plus
    that variant's grants). A single version may add readers of its own."""
    covers = Grant.variant.is_(None) if variant is None else or_(Grant.variant.is_(None), Grant.variant == variant)
    return _readers(select(Grant.user_id, Grant.group_id).where(Grant.report_id == report.id, covers))
