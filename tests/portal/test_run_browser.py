"""The run form and the status page in headless Chromium: the form drawn from the schema, a
refused value's message, the status page following the request by itself (its script under
the portal's CSP), and the link once the run is published. Screenshots in tests/artifacts/."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from publish_server.extensions import db
from publish_server.models import Publication, Report, ReportProfile, RunGrant, RunRequest, User

from .run_helpers import SCHEMA, add_run_log
from .test_browser import ARTIFACTS, browser, enter_code, serve_portal, smtp  # noqa: F401  (fixtures)
from .conftest import TEST_PASSWORD


def test_run_form_and_status_page_in_a_browser(tmp_path, smtp, browser):  # noqa: F811
    with serve_portal(tmp_path, smtp) as (app, base, _seeded):
        with app.app_context():
            report = db.session.scalars(sa.select(Report)).one()
            user = db.session.scalars(sa.select(User)).one()
            db.session.add(ReportProfile(report_id=report.id, parameters=SCHEMA, owners=["reader@example.org"],
                                         schedule={"text": "every Monday at 06:00 (Europe/Berlin)"}, next_runs=["2026-12-07T05:00:00Z"]))
            db.session.add(RunGrant(report_id=report.id, user_id=user.id))
            db.session.commit()
            add_run_log(report, "20261130T050000Z-1a2b3c4d", notebook="<p>ZeroDivisionError</p>",
                        error_line="cell 4: ZeroDivisionError: division by zero")
            add_run_log(report, "20261123T050000Z-0a0b0c0d", status="succeeded")
            db.session.remove()
        page = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
        csp_violations: list[str] = []
        page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{base}/reports/weekly_statistics")
        page.get_by_label("Email").fill("reader@example.org")
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        enter_code(page, smtp, base, 1)
        page.get_by_role("link", name="Run Weekly Statistics").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Run Weekly Statistics"
        assert page.get_by_label("ISO week to report").input_value() == "2026-11-16"
        page.screenshot(path=str(ARTIFACTS / "run-form.png"), full_page=True)
        page.set_viewport_size({"width": 375, "height": 740})  # a phone: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.set_viewport_size({"width": 1000, "height": 900})

        page.get_by_label("Rows in the top table").fill("1.5")  # novalidate: the portal's message, not the browser's
        page.get_by_label("Title line").fill("Week 48")
        page.get_by_role("button", name="Run", exact=True).click()
        assert page.locator("#param-top-error").inner_text() == "parameter 'top': got '1.5', expected int"
        assert page.get_by_label("Title line").input_value() == "Week 48"
        page.screenshot(path=str(ARTIFACTS / "run-form-error.png"), full_page=True)

        page.get_by_label("Rows in the top table").fill("5")
        page.get_by_role("button", name="Run", exact=True).click()
        page.wait_for_url(f"{base}/requests/**")
        assert page.locator("#run-state").inner_text() == "queued"
        public_id = page.url.rsplit("/", 1)[1]
        with app.app_context():
            asked = db.session.scalars(sa.select(RunRequest).where(RunRequest.public_id == public_id)).one()
            asked.status, asked.stage = "running", "render"
            db.session.commit()
            expect(page.locator("#run-words")).to_have_text("Running (render)", timeout=10_000)  # polled, no reload
            page.screenshot(path=str(ARTIFACTS / "run-status-running.png"), full_page=True)
            asked.status, asked.publication_id = "succeeded", db.session.scalars(sa.select(Publication.id)).first()
            db.session.commit()
            db.session.remove()
        expect(page.locator("#run-result")).to_be_visible(timeout=10_000)
        assert page.locator("#run-cancel").is_hidden()
        page.screenshot(path=str(ARTIFACTS / "run-status-succeeded.png"), full_page=True)
        page.get_by_role("link", name="Open the report page").click()
        page.wait_for_url(f"{base}/reports/weekly_statistics")
        page.screenshot(path=str(ARTIFACTS / "run-report-page.png"), full_page=True)
        page.locator("#report-activity").click()
        assert "Runs every Monday at 06:00 (Europe/Berlin)." in page.content()
        notebook = page.locator("td a[href$='/notebook']").get_attribute("href")
        shown = page.request.get(base + notebook)
        assert shown.ok and "sandbox" in shown.headers["content-security-policy"]
        page.screenshot(path=str(ARTIFACTS / "run-activity.png"), full_page=True)
        page.get_by_role("link", name="Account").click()
        assert page.locator("#my-requests").is_visible() and "succeeded" in page.locator("table.runs").inner_text()
        page.screenshot(path=str(ARTIFACTS / "run-account-requests.png"), full_page=True)
        assert csp_violations == []
        page.context.close()
