"""Grants: a report grant covers every version; a publication grant adds one; groups count; admins see all."""

from __future__ import annotations

import pytest

from publish_server.access import get_visible_publication, visible_publications
from publish_server.errors import NotFound
from publish_server.extensions import db
from publish_server.models import Grant, Group, Publication, Report


def _publication(report: Report, version: int) -> Publication:
    pub = Publication(report=report, version=version, run_id=f"run-{version}", sha256="0" * 64, size=10, pages=1)
    db.session.add(pub)
    db.session.flush()
    return pub


def test_a_report_grant_covers_every_version_and_a_publication_grant_adds_one(app, make_user):
    north = make_user("north@example.org", groups=("north",))
    south = make_user("south@example.org", groups=("south",))
    admin = make_user("admin@example.org", role="admin")
    outsider = make_user("outsider@example.org")
    east = make_user("east@example.org", groups=("east",))
    report = Report(slug="weekly", title="Weekly")
    db.session.add(report)
    db.session.flush()
    shared, north_only = _publication(report, 1), _publication(report, 2)
    groups = {g.name: g for g in db.session.scalars(db.select(Group))}
    db.session.add_all([
        Grant(report_id=report.id, group_id=groups["north"].id),
        Grant(report_id=report.id, group_id=groups["south"].id),
        Grant(publication_id=north_only.id, group_id=groups["north"].id),
        Grant(publication_id=north_only.id, group_id=groups["east"].id),
    ])
    db.session.commit()

    def seen(user):
        return {p.version for p in db.session.scalars(visible_publications(user))}

    assert seen(north) == {1, 2}
    assert seen(south) == {1, 2}  # v2 names its own audience: the report grant still covers it
    assert seen(east) == {2}  # v2's own grant adds that one publication, not the report
    assert seen(admin) == {1, 2}
    assert seen(outsider) == set()
    assert get_visible_publication(north, north_only.public_id) == north_only
    for user, public_id in ((east, shared.public_id), (outsider, shared.public_id), (north, "guessed-id"), (north, "x" * 500)):
        with pytest.raises(NotFound):
            get_visible_publication(user, public_id)
