"""Who sees what, said plainly: the publish answer names the report page and its readers, the
CLI prints them (and warns when nobody can read), and a report grant covers every version,
also one published with an audience of its own. A REAL portal on loopback, real HTTP.
"""

from __future__ import annotations

import requests
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import Grant, Group, Report, User
from tests.test_publish_client import FAST, _nbpress, make_run_dir, portal, portal_app  # noqa: F401 (fixtures)
from toolkit.deliver.portal_client import publish_run
from toolkit.runs.run_folder import load_run


def _people(app, *, report: str | None = None, **members: list[str]) -> None:
    """Groups with their members (recipients); ``report`` granted to every one of them."""
    with app.app_context():
        for name, emails in members.items():
            group = Group(name=name)
            group.members = [User(email=e, display_name=e.split("@")[0], password_hash="x") for e in emails]
            db.session.add(group)
        db.session.add(User(email="root@example.org", password_hash="x", role="admin"))  # reads everything, never counted
        db.session.add(User(email="gone@example.org", password_hash="x", active=False,
                            groups=list(db.session.scalars(sa.select(Group)))))  # disabled: reads nothing
        db.session.flush()
        if report:
            row = Report(slug=report, title=report)
            db.session.add(row)
            db.session.flush()
            db.session.add_all(Grant(report_id=row.id, group_id=g.id) for g in db.session.scalars(sa.select(Group)))
        db.session.commit()


def test_the_publish_answer_carries_the_report_page_and_its_readers(portal, tmp_path):
    _people(portal.app, report="weekly_statistics", north=["a@example.org", "b@example.org"], south=["c@example.org"])
    published = publish_run(make_run_dir(tmp_path), portal.url, portal.token, **FAST)
    assert published.page_url == f"{portal.url}/reports/weekly_statistics"
    assert (published.readers, published.reader_groups) == (3, ("north", "south"))
    assert published.readers_text() == "3 users in north, south"
    # the page is what a browser opens: unsigned, it sends to the sign-in page (not a JSON 401)
    page = requests.get(published.page_url, allow_redirects=False, timeout=10)
    assert page.status_code == 303 and page.headers["Location"].startswith("/login")
    assert requests.get(published.url, timeout=10).status_code == 401  # the API download, for scripts
    # the OpenAPI document says the same as the answer
    schema = requests.get(f"{portal.url}/api/openapi.json", timeout=10).json()
    created = schema["paths"]["/api/v1/publications"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/PublishedOut"}
    fields = schema["components"]["schemas"]["PublishedOut"]["properties"]
    assert {"page_url", "readers", "download_url"} <= set(fields)


def test_a_report_grant_covers_a_version_published_with_its_own_audience(portal, tmp_path):
    _people(portal.app, report="weekly_statistics", north=["a@example.org"], south=["c@example.org"], east=["e@example.org"])
    first = publish_run(make_run_dir(tmp_path), portal.url, portal.token, **FAST)
    own = publish_run(make_run_dir(tmp_path), portal.url, portal.token, audience={"groups": ["east"]}, **FAST)
    assert (first.version, own.version) == (1, 2)
    # east is granted the report already; the own audience takes nobody away from the report's grant
    assert (own.readers, own.reader_groups) == (3, ("east", "north", "south"))
    with portal.app.app_context():
        db.session.execute(sa.delete(Grant).where(Grant.report_id.is_not(None), Grant.group_id == sa.select(Group.id).where(Group.name == "east").scalar_subquery()))
        db.session.commit()
    third = publish_run(make_run_dir(tmp_path), portal.url, portal.token, audience={"groups": ["east"]}, **FAST)
    assert (third.readers, third.reader_groups) == (3, ("east", "north", "south"))  # east by its own grant
    again = publish_run(make_run_dir(tmp_path), portal.url, portal.token, **FAST)
    assert (again.readers, again.reader_groups) == (2, ("north", "south"))  # the own grant added one publication only


def test_cli_prints_the_page_and_who_can_read_it(portal, tmp_path):
    _people(portal.app, report="weekly_statistics", north=["a@example.org", "b@example.org"])
    run_dir = make_run_dir(tmp_path / "runs")
    done = _nbpress("publish", str(run_dir), "--portal", portal.url, env={"NBPRESS_PUBLISH_TOKEN": portal.token}, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    page = f"{portal.url}/reports/weekly_statistics"
    publication = load_run(run_dir).publication
    assert done.stdout.splitlines() == [f"published weekly_statistics 2026-W47 v1 (id {publication.id}): {page}", "readable by 2 users in north"]
    assert publication.page_url == page
    listed = _nbpress("runs", env={}, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"v1 {page} (id {publication.id})" in listed.stdout
