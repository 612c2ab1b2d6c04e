"""Grants: a publication's own grants win; otherwise its report's; groups count; admins see all."""

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


def test_grants_inherit_from_the_report_unless_the_publication_names_its_own(app, make_user):
    north = make_user("north@example.org", groups=("north",))
    south = make_user("south@example.org", groups=("south",))
    admin = make_user("admin@example.org", role="admin")
    outsider = make_user("outsider@example.org")
    report = Report(slug="weekly", title="Weekly")
    db.session.add(report)
    db.session.flush()
    shared, north_only = _publication(report, 1), _publication(report, 2)
    groups = {g.name: g for g in db.session.scalars(db.select(Group))}
    db.session.add_all([
        Grant(report_id=report.id, group_id=groups["north"].id),
        Grant(report_id=report.id, group_id=groups["south"].id),
        Grant(publication_id=north_only.id, group_id=groups["north"].id),
    ])
    db.session.commit()

    def seen(user):
        return {p.version for p in db.session.scalars(visible_publications(user))}

    assert seen(north) == {1, 2}
    assert seen(south) == {1}  # v2 names its own audience: the report's grants do not apply
    assert seen(admin) == {1, 2}
    assert seen(outsider) == set()
    assert get_visible_publication(north, north_only.public_id) == north_only
    for user, public_id in ((south, north_only.public_id), (outsider, shared.public_id), (north, "guessed-id"), (north, "x" * 500)):
        with pytest.raises(NotFound):
            get_visible_publication(user, public_id)
