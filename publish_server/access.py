"""Who may read which publication. Every list and download goes through here.

A publication with grants of its own is visible to those subjects only; one without inherits its
report's grants. A subject is a user or a group the user belongs to. Admins see everything.
A publication that is not visible does not exist for that user (404, never 403).
"""

from __future__ import annotations

from sqlalchemy import Select, and_, or_, select

from .errors import NotFound
from .extensions import db
from .models import Grant, Membership, Publication, Report, User

__all__ = ["visible_publications", "get_visible_publication", "visible_reports"]


def _subject_matches(user: User):
    groups = select(Membership.group_id).where(Membership.user_id == user.id).scalar_subquery()
    return or_(Grant.user_id == user.id, Grant.group_id.in_(groups))


def _visible(user: User):
    # Plain correlated EXISTS subqueries: cheap to build on every request (aliases are not).
    has_own = select(Grant.id).where(Grant.publication_id == Publication.id).exists()
    granted_own = select(Grant.id).where(Grant.publication_id == Publication.id, _subject_matches(user)).exists()
    granted_report = select(Grant.id).where(Grant.report_id == Publication.report_id, _subject_matches(user)).exists()
    return or_(granted_own, and_(~has_own, granted_report))


def visible_publications(user: User) -> Select:
    query = select(Publication).join(Publication.report)
    if not user.is_admin:
        query = query.where(_visible(user))
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
