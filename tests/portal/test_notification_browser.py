"""A notification's links, followed in headless Chromium as a recipient would.

Two variants of one report are published through the real API to a portal on loopback; the reader
is granted the north variant only. The mail worker sends the notification to a real SMTP server
(aiosmtpd); the browser opens the link from the mail, signs in (password, then the emailed code),
comes back to the report page with north chosen and downloads north's PDF (its SHA-256 checked).
Then the mail's one-click unsubscribe link, and a withdrawn version's link. Screenshots go to
tests/artifacts/.
"""

from __future__ import annotations

import hashlib
import io
import json
import re

import requests
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import Grant, NotificationPreference, Report, User
from publish_server.notifications import worker
from publish_server.publishing import create_publisher_token
from publish_server.withdrawal import withdraw

from .conftest import TEST_PASSWORD, make_pdf
from .smtp_server import text_of
from .test_browser import ARTIFACTS, browser, enter_code, smtp  # noqa: F401 (fixtures)
from .test_browser import serve_portal
from .test_recipient_pages_browser import READER

REPORT = "weekly_statistics"


def publish_variant(base: str, token: str, region: str, run: int = 1) -> dict:
    pdf = make_pdf(2, marker=f"region {region} run {run}")
    metadata = {"report": REPORT, "run_id": f"run-{region}-{run}", "sha256": hashlib.sha256(pdf).hexdigest(),
                "period_label": "2026-W48", "variant": {"region": region}, "parameters": {"region": region},
                "summary": f"{region}: 42 events"}
    answer = requests.post(f"{base}/api/v1/publications", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                           data={"metadata": json.dumps(metadata)}, files={"file": ("report.pdf", io.BytesIO(pdf), "application/pdf")})
    assert answer.status_code == 201, answer.text
    return answer.json()


def grant_north_only(app) -> str:
    """The seeded reader loses the report grant and gets the north variant; returns a publisher token."""
    with app.app_context():
        report = db.session.scalars(sa.select(Report).where(Report.slug == REPORT)).one()
        reader = db.session.scalars(sa.select(User).where(User.email == READER)).one()
        db.session.execute(sa.delete(Grant).where(Grant.report_id == report.id))
        db.session.add(Grant(report_id=report.id, variant="north", user_id=reader.id))
        _row, token = create_publisher_token("browser-publisher")
        db.session.commit()
        db.session.remove()
    return token


def test_notification_link_sign_in_variant_pdf_unsubscribe_and_withdrawn(tmp_path, smtp, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve_portal(tmp_path, smtp) as (app, base, _seeded):
        token = grant_north_only(app)
        north, south = publish_variant(base, token, "north"), publish_variant(base, token, "south")
        app.config["NBPRESS"] = {**app.config["NBPRESS"], "NOTIFY_MAX_PER_MINUTE": 0}
        assert worker.run(app, once=True).sent == 1  # the reader reads north only: one mail, for north

        (mail,) = smtp.inbox.to(READER)
        body = text_of(mail)
        assert "Weekly Statistics" in mail["Subject"] and "north" in mail["Subject"] and "north: 42 events" in body
        assert "south" not in mail["Subject"] + body
        link = re.search(rf"{re.escape(base)}/reports/{REPORT}\?variant=north\b\S*", body).group(0)
        unsubscribe = mail["List-Unsubscribe"].strip("<>")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        # The link, opened signed out, leads through sign-in back to north's report page.
        page = browser.new_context(viewport={"width": 1100, "height": 800}, accept_downloads=True).new_page()
        page.goto(link)
        page.wait_for_url(f"{base}/login?next=**")
        page.get_by_label("Email").fill(READER)
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        enter_code(page, smtp, base, 2)
        page.wait_for_url(re.compile(rf".*/reports/{REPORT}\?variant=north$"))
        assert page.get_by_role("heading", level=1).inner_text() == "Weekly Statistics: north"
        content = page.content()
        assert north["id"] in content and south["id"] not in content
        page.screenshot(path=str(ARTIFACTS / "portal-notification-variant.png"), full_page=True)
        cells = page.locator("table.publications tbody tr").first.locator("td")
        tops = {round(cells.nth(i).bounding_box()["y"]) for i in range(cells.count())}
        assert len(tops) == 1, tops  # the file cell is a table cell like the others (it was a flex box once)
        with page.expect_download() as downloading:
            page.locator(f"a[href$='/p/{north['id']}/download']").click()
        download = downloading.value
        assert hashlib.sha256(open(download.path(), "rb").read()).hexdigest() == north["sha256"]
        assert "north" in download.suggested_filename

        # South, asked for by id, does not exist for this reader.
        assert page.goto(f"{base}/p/{south['id']}/view").status == 404

        # A withdrawn version: its link answers 410 with the reason, on a page.
        with app.app_context():
            from publish_server.models import Publication

            withdraw(db.session.scalars(sa.select(Publication).where(Publication.public_id == north["id"])).one(),
                     "wrong figures for week 48", by="operator")
            db.session.commit()
            db.session.remove()
        gone = page.goto(f"{base}/p/{north['id']}/view")
        assert gone.status == 410 and "wrong figures for week 48" in page.inner_text("main")

        # The unsubscribe link works without signing in, in a fresh browser, and asks first.
        anonymous = browser.new_context().new_page()
        anonymous.goto(unsubscribe)
        with app.app_context():
            assert db.session.scalars(sa.select(NotificationPreference)).all() == []  # opening it changed nothing
            db.session.remove()
        anonymous.screenshot(path=str(ARTIFACTS / "portal-unsubscribe.png"), full_page=True)
        assert "r***@example.org" in anonymous.inner_text("main") and READER not in anonymous.content()  # the link may be forwarded
        anonymous.get_by_role("button", name="Unsubscribe").click()
        anonymous.wait_for_load_state()
        assert "unsubscribed" in anonymous.inner_text("main").lower()
        with app.app_context():
            (preference,) = db.session.scalars(sa.select(NotificationPreference)).all()
            assert preference.mode == "none"
            db.session.remove()
        before = len(smtp.inbox.to(READER))
        publish_variant(base, token, "north", run=2)  # the next north version: the reader has opted out
        assert worker.run(app, once=True).sent == 0 and len(smtp.inbox.to(READER)) == before
