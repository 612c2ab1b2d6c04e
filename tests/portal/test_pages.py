"""Recipients' pages: the list, filters and search, report history, downloads, and error pages.

Publications are made here directly (models + the real file store); signing in goes through the
real form. Every access rule is checked from the outside: what the page shows, what a URL answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from urllib.parse import quote

import pytest
from flask import request

from publish_server.errors import Forbidden
from publish_server.extensions import db, limiter
from publish_server.models import AuditEvent, Grant, Group, Publication, Report, User
from publish_server.pages import download_name, human_size
from publish_server.storage import FileStore
from tests.portal.conftest import make_pdf

BASE = dt.datetime(2026, 11, 2, 9, 30)


@pytest.fixture
def publish(app):
    """``publish(slug, version, period, *, to=..., own=False)`` -> (Publication, pdf bytes)."""
    store = FileStore(app.config["FILES_DIR"])

    def make(slug: str, version: int, period: str, *, title: str | None = None, pages: int = 1,
             to: tuple[User | str, ...] = (), own: bool = False) -> tuple[Publication, bytes]:
        report = db.session.scalars(db.select(Report).where(Report.slug == slug)).first()
        if report is None:
            report = Report(slug=slug, title=title or slug.replace("_", " ").title())
            db.session.add(report)
            db.session.flush()
        data = make_pdf(pages, marker=f"{slug} v{version}")
        stored = store.put(io.BytesIO(data), limit=10 * 1024 * 1024)
        publication = Publication(
            report=report, version=version, run_id=f"{slug}-run-{version}", period_label=period,
            sha256=stored.sha256, size=stored.size, pages=pages, created_at=BASE + dt.timedelta(days=7 * version),
        )
        db.session.add(publication)
        db.session.flush()
        for subject in to:
            target = {"publication_id": publication.id} if own else {"report_id": report.id}
            if isinstance(subject, User):
                grant = Grant(user_id=subject.id, **target)
            else:
                group = db.session.scalars(db.select(Group).where(Group.name == subject)).one()
                grant = Grant(group_id=group.id, **target)
            if not db.session.scalars(db.select(Grant).filter_by(**{k: getattr(grant, k) for k in ("report_id", "publication_id", "user_id", "group_id")})).first():
                db.session.add(grant)
        db.session.commit()
        return publication, data

    return make


@pytest.fixture
def world(make_user, publish):
    """alice (group north) reads weekly statistics v1..v3 and monthly v1; bob reads the finance report."""
    alice = make_user("alice@example.org", groups=("north",))
    bob = make_user("bob@example.org")
    weekly = [publish("weekly_statistics", v, f"2026-W{44 + v}", title="Weekly Statistics", pages=v, to=("north",)) for v in (1, 2, 3)]
    monthly, _ = publish("monthly_summary", 1, "2026-10", title="Monthly Summary", to=(alice,), own=True)
    hidden, _ = publish("monthly_summary", 2, "November 2026", title="Monthly Summary", to=(bob,), own=True)
    finance, finance_pdf = publish("finance", 1, "2026-Q3", title="Finance Secrets", to=(bob,))
    return {"alice": alice, "bob": bob, "weekly": weekly, "monthly": monthly, "hidden": hidden, "finance": (finance, finance_pdf)}


@pytest.fixture
def portal_logs(caplog):
    """caplog for the portal's loggers. migrations/env.py runs logging.config.fileConfig, which
    disables loggers that already exist (``disable_existing_loggers``) whenever a migration runs
    in-process, as the app fixture does; switch ours back on so the records can be checked."""
    import logging

    for name in ("publish_server.pages", "publish_server.error_pages"):
        logging.getLogger(name).disabled = False
    return caplog


def _text(response) -> str:
    return response.get_data(as_text=True)


def _public_ids(html: str) -> set[str]:
    return set(re.findall(r'/p/([A-Za-z0-9_-]+)/download', html))


# --- the list -----------------------------------------------------------------------------------


def test_list_shows_only_granted_publications_grouped_newest_first(client, login, world):
    login(client, "alice@example.org")
    response = client.get("/")
    assert response.status_code == 200
    html = _text(response)
    weekly = [p for p, _ in world["weekly"]]
    assert _public_ids(html) == {p.public_id for p in weekly} | {world["monthly"].public_id}
    assert "Finance Secrets" not in html and "2026-Q3" not in html and "November" not in html
    # grouped: each report once as a heading; the group with the newest publication first
    listing = html[html.index("</form>", html.index("filter-report")):]
    assert listing.count("<h2") == 2
    assert listing.index("Weekly Statistics") < listing.index("Monthly Summary")
    # newest first inside a group, with period, publication date, pages and a readable size
    assert html.index("2026-W47") < html.index("2026-W46") < html.index("2026-W45")
    assert weekly[2].created_at.strftime("%Y-%m-%d %H:%M UTC") in html
    assert f'data-label="Size" class="num">{human_size(weekly[2].size)}<' in html
    assert re.search(r'data-label="Pages" class="num">3<', html)


def test_list_for_a_user_with_no_grants_says_so(client, login, make_user, world):
    make_user("carol@example.org")
    login(client, "carol@example.org")
    html = _text(client.get("/"))
    assert _public_ids(html) == set()
    assert "no reports for you yet" in html


def test_filter_by_report_and_search_by_title_or_period(client, login, world):
    login(client, "alice@example.org")
    only_monthly = _text(client.get("/?report=monthly_summary"))
    assert _public_ids(only_monthly) == {world["monthly"].public_id}
    assert '<option value="monthly_summary" selected>' in only_monthly
    # the select offers the reports this user can see, nothing else
    assert 'value="finance"' not in only_monthly

    by_period = _text(client.get("/?q=w46"))
    assert _public_ids(by_period) == {world["weekly"][1][0].public_id}
    by_title = _text(client.get("/?q=MONTHLY"))
    assert _public_ids(by_title) == {world["monthly"].public_id}
    both = _text(client.get("/?report=weekly_statistics&q=2026-W4"))
    assert _public_ids(both) == {p.public_id for p, _ in world["weekly"]}
    assert 'value="2026-W4"' in both  # the search box keeps what was typed

    # filters never widen access, and LIKE wildcards are plain characters
    assert _public_ids(_text(client.get("/?report=finance"))) == set()
    assert _public_ids(_text(client.get("/?q=Finance"))) == set()
    assert "No reports match" in _text(client.get("/?q=%25"))
    # control characters (PostgreSQL refuses NUL in text) are dropped, not a 500
    assert client.get("/?q=W4%00&report=%00").status_code == 200
    assert client.get("/reports/weekly%00").status_code == 404
    assert _public_ids(_text(client.get("/?q=_"))) == {world["monthly"].public_id} | {p.public_id for p, _ in world["weekly"]}


def test_long_histories_are_collapsed_on_the_list_and_complete_on_the_report_page(client, login, make_user, publish):
    reader = make_user("reader@example.org")
    published = [publish("daily", v, f"day {v}", to=(reader,))[0] for v in range(1, 8)]
    login(client, "reader@example.org")
    html = _text(client.get("/"))
    assert _public_ids(html) == {p.public_id for p in published[2:]}  # the 5 newest
    assert "All 7 periods" in html and 'href="/reports/daily"' in html  # one version each
    history = _text(client.get("/reports/daily"))
    assert _public_ids(history) == {p.public_id for p in published}
    assert history.index("day 7") < history.index("day 1")
    # a search shows every match, not only the newest five
    assert len(_public_ids(_text(client.get("/?q=day")))) == 7


# --- the report page ------------------------------------------------------------------------------


def test_report_page_shows_only_visible_versions_and_404s_otherwise(client, login, world):
    login(client, "alice@example.org")
    response = client.get("/reports/monthly_summary")
    assert response.status_code == 200
    html = _text(response)
    assert _public_ids(html) == {world["monthly"].public_id}  # v2 is granted to bob only
    assert "1 version," in html and "November" not in html
    not_granted = client.get("/reports/finance")
    unknown = client.get("/reports/no-such-report")
    assert not_granted.status_code == unknown.status_code == 404
    assert _text(not_granted) == _text(unknown)  # no way to tell "exists" from "absent"
    assert "Finance" not in _text(not_granted)


# --- downloads ---------------------------------------------------------------------------------------


def test_download_sends_the_stored_bytes_with_safe_headers_and_is_audited(app, client, login, world):
    login(client, "alice@example.org")
    publication, data = world["weekly"][2]
    response = client.get(f"/p/{publication.public_id}/download")
    assert response.status_code == 200
    body = response.get_data()
    assert hashlib.sha256(body).hexdigest() == publication.sha256 == hashlib.sha256(data).hexdigest()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=weekly_statistics-v3-2026-W47.pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{publication.sha256}"'
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "download")).all()
    assert [(e.outcome, e.user_id, e.detail["publication"], e.detail["mode"]) for e in events] == [("ok", world["alice"].id, publication.public_id, "attachment")]

    # conditional requests and ranges (resumable downloads)
    assert client.get(f"/p/{publication.public_id}/download", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    part = client.get(f"/p/{publication.public_id}/download", headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.get_data() == data[:8] and data.startswith(b"%PDF-")


def test_view_sends_the_pdf_inline(client, login, world):
    login(client, "alice@example.org")
    publication = world["monthly"]
    response = client.get(f"/p/{publication.public_id}/view")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "inline; filename=monthly_summary-v1-2026-10.pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
    assert {"sandbox", "default-src 'none'", "frame-ancestors 'none'"} <= set(csp)
    assert hashlib.sha256(response.get_data()).hexdigest() == publication.sha256


def test_another_users_publication_is_404_like_an_unknown_id(client, login, world):
    login(client, "alice@example.org")
    finance, _ = world["finance"]
    unknown = client.get("/p/AAAAAAAAAAAAAAAAAAAAAA/download")
    for public_id in (finance.public_id, world["hidden"].public_id):
        for action in ("download", "view"):
            response = client.get(f"/p/{public_id}/{action}")
            assert response.status_code == 404
            assert response.headers["Content-Type"].startswith("text/html")
            assert _text(response) == _text(unknown)
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "download")).all()
    assert {e.outcome for e in events} == {"refused"} and len(events) == 5  # refusals are audited too
    assert {e.detail["requested"] for e in events} == {"AAAAAAAAAAAAAAAAAAAAAA", finance.public_id, world["hidden"].public_id}
    assert all(e.user_id == world["alice"].id for e in events)


@pytest.mark.parametrize("guess", [
    "../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..", ".",
    "....//....//etc/passwd", "%00", "1", "0", "-1", "x" * 33, "A" * 500, "%C0%AE%C0%AE%2F",
    "file:%2F%2F%2Fetc%2Fpasswd", "%5C..%5C..%5Cwindows", "abc%00def", "%0d%0aSet-Cookie:x",
])
def test_guessed_and_traversal_ids_are_404(client, login, world, guess):
    login(client, "alice@example.org")
    for action in ("download", "view"):
        response = client.get(f"/p/{guess}/{action}", follow_redirects=True)  # "//" gets a 308 to one "/"
        assert response.status_code == 404, (guess, action)
        assert all(r.headers.get("Location", "").startswith("http://localhost/p/") for r in response.history)
        assert b"%PDF" not in response.get_data() and b"root:" not in response.get_data()


def test_the_file_is_found_by_stored_hash_only(client, login, world):
    """Neither the stored hash nor a row number works as an id: only the random public id does."""
    login(client, "alice@example.org")
    publication, _ = world["weekly"][0]
    for guess in (publication.sha256, publication.sha256[:32], str(publication.id), f"{publication.sha256}.pdf"):
        assert client.get(f"/p/{quote(guess)}/download").status_code == 404


def test_a_file_missing_from_the_store_is_404_not_a_crash(app, client, login, world, portal_logs):
    login(client, "alice@example.org")
    publication, _ = world["weekly"][0]
    FileStore(app.config["FILES_DIR"]).path_for(publication.sha256).unlink()
    response = client.get(f"/p/{publication.public_id}/download")
    assert response.status_code == 404
    assert publication.sha256 not in _text(response) and str(app.config["FILES_DIR"]) not in _text(response)
    assert "missing from the store" in portal_logs.text  # the operator learns it from the log


def test_pages_and_downloads_need_a_signed_in_user(client, world):
    publication, _ = world["weekly"][0]
    for path in ("/", "/?report=weekly_statistics&q=W4", "/reports/weekly_statistics", f"/p/{publication.public_id}/download", f"/p/{publication.public_id}/view"):
        response = client.get(path)
        assert response.status_code in (302, 303), path
        location = response.headers["Location"]
        assert location.startswith("/login?next="), location
        assert client.get(location).status_code == 200


def test_a_disabled_user_is_signed_out_of_pages(client, login, world):
    login(client, "alice@example.org")
    assert client.get("/").status_code == 200
    world["alice"].active = False
    db.session.commit()
    response = client.get(f"/p/{world['monthly'].public_id}/download", follow_redirects=True)
    assert response.request.path == "/login" and response.headers["Content-Type"].startswith("text/html")
    assert not db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "download", AuditEvent.outcome == "ok")).all()


def test_downloads_change_nothing_on_other_methods(client, login, world):
    login(client, "alice@example.org")
    publication, _ = world["weekly"][0]
    assert client.post(f"/p/{publication.public_id}/download").status_code == 405
    assert client.delete(f"/p/{publication.public_id}/download").status_code == 405


def test_page_html_has_no_inline_script_or_style_and_labels_its_controls(client, login, world):
    login(client, "alice@example.org")
    for path in ("/", "/reports/weekly_statistics"):
        response = client.get(path)
        html = _text(response)
        assert "<script" not in html and "<style" not in html and " style=" not in html and " on" + "click=" not in html
        assert response.headers["Cache-Control"] == "no-store"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert '<meta name="viewport"' in html
        assert '<html lang="en">' in html
    index = _text(client.get("/"))
    for control in ("filter-report", "filter-q"):
        assert f'<label for="{control}"' in index and f'id="{control}"' in index
    assert 'href="/logout"' in index  # sign-out asks first; its confirmation form carries the CSRF value
    assert 'name="csrf_token"' in _text(client.get("/logout"))


@pytest.mark.parametrize(("slug", "version", "period", "expected"), [
    ("weekly_statistics", 3, "2026-W47", "weekly_statistics-v3-2026-W47.pdf"),
    ("weekly", 1, "Week 47 / 2026", "weekly-v1-Week_47_2026.pdf"),
    ("r", 2, '../../etc/passwd"; x=<y>', "r-v2-etc_passwd_x_y.pdf"),
    ("r", 4, "", "r-v4.pdf"),
    ("..", 5, "Ünïcödé €", "report-v5-n_c_d.pdf"),
    ("rapport", 6, "\r\nSet-Cookie: a=b", "rapport-v6-Set-Cookie_a_b.pdf"),
])
def test_download_names_are_clean(slug, version, period, expected):
    publication = Publication(report=Report(slug=slug, title="t"), version=version, period_label=period)
    name = download_name(publication)
    assert name == expected
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.pdf", name)


def test_human_sizes():
    assert [human_size(n) for n in (None, 0, 999, 1000, 1_048_576, 3_500_000_000)] == ["–", "0 bytes", "999 bytes", "1.0 kB", "1.0 MB", "3.5 GB"]


# --- error pages ------------------------------------------------------------------------------------

SECRET_DETAIL = "SELECT password_hash FROM users WHERE email='x' -- /srv/nbpress/instance/portal.sqlite3"


def test_error_pages_leak_nothing(app, client, portal_logs):
    @app.get("/boom")
    def boom():
        raise RuntimeError(SECRET_DETAIL)

    @app.get("/boom-db")
    def boom_db():
        db.session.execute(db.text("SELECT no_such_column FROM no_such_table_in /srv/secret"))

    @app.get("/forbidden")
    def forbidden():
        raise Forbidden()

    @app.get("/missing-key")
    def missing_key():
        return request.args["password_hash_of_srv"]

    @app.get("/limited")
    @limiter.limit("1 per minute")
    def limited():
        return "ok"

    client.get("/limited")
    cases = {
        "/boom": 500, "/boom-db": 500, "/forbidden": 403, "/missing-key": 400,
        "/limited": 429, "/no/such/page": 404, "/static/../../etc/passwd": 404,
    }
    for path, status in cases.items():
        for accept, kind in (("text/html", "text/html"), ("application/json", "application/json")):
            response = client.get(path, headers={"Accept": accept})
            assert response.status_code == status, path
            assert response.headers["Content-Type"].startswith(kind), (path, accept)
            body = response.get_data(as_text=True)
            for leak in ("Traceback", "SELECT", "no_such", "/srv", "password_hash", "sqlite", "File \"", "RuntimeError", "werkzeug", app.instance_path):
                assert leak not in body, (path, accept, leak)
            if kind == "text/html":
                assert "<h1>" in body and 'href="/"' in body
                assert "script" not in body.lower()
            if not path.startswith("/static/"):
                assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/limited").headers["Retry-After"]
    assert "SELECT password_hash" in portal_logs.text  # the operator still gets the details, in the log


def test_api_errors_are_json(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
