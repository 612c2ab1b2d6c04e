"""The recipient's whole visit in a real browser: headless Chromium against a real server on loopback.

Sign in through the form, type the code that arrived at a real SMTP server (aiosmtpd) on
loopback, see the list (a screenshot is kept in tests/artifacts/), download a PDF
whose bytes hash to the published SHA-256, sign out, and check that Back does not bring the list
back. Runs once, on SQLite: the database does not change what the browser sees.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from pathlib import Path

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import AuditEvent, Grant, Publication, Report, User
from publish_server.signin.passwords import Passwords
from publish_server.storage import FileStore

from .conftest import TEST_PASSWORD, base_config, make_pdf
from .smtp_server import SmtpServer, code_in

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (`make test` installs Debian's chromium); in CI this test must run",
                allow_module_level=True)


@pytest.fixture
def smtp():
    with SmtpServer("plain") as server:
        yield server


@contextlib.contextmanager
def serve_portal(tmp_path, smtp, *, host: str = "127.0.0.1", **settings):
    """A seeded portal served by Werkzeug on loopback (random port) in a thread, mailing to ``smtp``."""
    app = create_app(base_config(MAIL_URL=f"smtp://127.0.0.1:{smtp.port}", **settings), instance_path=tmp_path / "instance")
    with app.app_context():
        upgrade()
        passwords = Passwords.from_settings(app.config["NBPRESS"])
        user = User(email="reader@example.org", display_name="Reader", password_hash=passwords.hash(TEST_PASSWORD))
        report = Report(slug="weekly_statistics", title="Weekly Statistics")
        data = make_pdf(3, marker="browser test")
        stored = FileStore(app.config["FILES_DIR"]).put(io.BytesIO(data), limit=1 << 24)
        publication = Publication(report=report, version=3, run_id="run-3", period_label="2026-W47",
                                  sha256=stored.sha256, size=stored.size, pages=3)
        db.session.add_all([user, report, publication])
        db.session.flush()
        db.session.add(Grant(report_id=report.id, user_id=user.id))
        db.session.commit()
        seeded = {"sha256": publication.sha256, "public_id": publication.public_id}
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="portal-under-test", daemon=True)
    thread.start()
    try:
        yield app, f"http://{host}:{server.server_port}", seeded
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def portal(tmp_path, smtp):
    with serve_portal(tmp_path, smtp) as served:
        yield served


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def enter_code(page, smtp, base, count: int) -> None:
    """Wait for the ``count``-th mail to the reader and type its code into the verify form."""
    page.wait_for_url(f"{base}/login/verify**")
    for _ in range(100):
        if len(smtp.inbox.to("reader@example.org")) >= count:
            break
        page.wait_for_timeout(50)
    page.get_by_label("Code").fill(code_in(smtp.inbox.to("reader@example.org")[count - 1]))
    page.get_by_role("button", name="Verify").click()


def test_sign_in_list_download_sign_out_and_back_does_not_show_the_list(portal, browser, smtp):
    app, base, seeded = portal
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 800})
    page = context.new_page()
    csp_violations: list[str] = []
    page.on("console", lambda message: csp_violations.append(message.text) if "Content Security Policy" in message.text else None)

    # Not signed in: the list sends us to the sign-in form, which brings us back afterwards.
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login?next=")
    page.get_by_label("Email").fill("reader@example.org")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    enter_code(page, smtp, base, 1)
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Reports"
    assert page.get_by_role("heading", name="Weekly Statistics").is_visible()
    assert page.get_by_role("cell", name="2026-W47", exact=True).is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal-list.png"), full_page=True)

    # Download: the bytes the browser saved are the bytes that were published.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download Weekly Statistics 2026-W47 v3 (PDF)").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == "weekly_statistics-v3-2026-W47.pdf"
    assert hashlib.sha256(Path(download.path()).read_bytes()).hexdigest() == seeded["sha256"]
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "download")).all()
        assert [e.detail["publication"] for e in events] == [seeded["public_id"]]
        db.session.remove()

    # The inline view opens in the browser's PDF viewer (a navigation, not a download).
    view_url = f"{base}/p/{seeded['public_id']}/view"
    viewer = context.new_page()
    response = viewer.goto(view_url)
    assert response.status == 200 and viewer.url == view_url
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline;")
    viewer.close()

    # On a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "portal-list-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1100, "height": 800})

    # Sign out (a link to a confirmation, then its POST form), then Back must not show the list again.
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    page.go_back()
    page.wait_for_load_state()
    assert "2026-W47" not in page.content() and "Weekly Statistics" not in page.content()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    assert "/login" in page.url
    # And the download link itself is dead for this browser now.
    response = page.request.get(f"{base}/p/{seeded['public_id']}/download", max_redirects=0)
    assert response.status in (302, 303) and "/login" in response.headers["location"]

    # Signing in again in the same browser: the device is trusted, no code is asked for.
    page.get_by_label("Email").fill("reader@example.org")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    assert len(smtp.inbox.to("reader@example.org")) == 2  # the code and the new sign-in notice

    # A second browser profile is a new device: it is asked for a code.
    other = browser.new_context().new_page()
    other.goto(f"{base}/login")
    other.get_by_label("Email").fill("reader@example.org")
    other.get_by_label("Password").fill(TEST_PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url(f"{base}/login/verify**")
    assert other.get_by_role("heading", level=1).inner_text() == "Enter your code"
    assert "Weekly Statistics" not in other.content()
    response = other.request.get(f"{base}/p/{seeded['public_id']}/download", max_redirects=0)
    assert response.status in (302, 303) and "/login" in response.headers["location"]  # the pending step grants nothing
    enter_code(other, smtp, base, 3)
    other.wait_for_url(f"{base}/")
    other.context.close()

    assert csp_violations == []  # no inline script or style anywhere on the way
    context.close()


def test_a_real_browser_keeps_the_host_prefixed_cookies_through_sign_in_refresh_and_sign_out(tmp_path, smtp, browser):
    """COOKIE_SECURE on: Chromium itself enforces the ``__Host-`` rules (Secure, Path=/, no Domain)
    and drops a cookie that breaks them, so the sign-in, the refresh hop and sign-out only work
    when every cookie is set correctly. http://localhost counts as a secure context for cookies."""
    with serve_portal(tmp_path, smtp, host="localhost", COOKIE_SECURE=True) as (_app, base, _seeded):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/")
        page.get_by_label("Email").fill("reader@example.org")
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        enter_code(page, smtp, base, 1)
        page.wait_for_url(f"{base}/")
        assert page.get_by_role("heading", name="Weekly Statistics").is_visible()
        cookies = context.cookies()
        assert {c["name"] for c in cookies} == {"__Host-access_token_cookie", "__Host-refresh_token_cookie", "__Host-csrf_access_token",
                                                "__Host-csrf_refresh_token", "__Host-nbpress_device"}
        assert all(c["secure"] and c["path"] == "/" for c in cookies)

        # The access cookie gone (as when it expires): the refresh hop renews it and the page shows again.
        context.clear_cookies(name="__Host-access_token_cookie")
        page.goto(f"{base}/")
        page.wait_for_url(f"{base}/")
        assert page.get_by_role("heading", name="Weekly Statistics").is_visible()
        assert "__Host-access_token_cookie" in {c["name"] for c in context.cookies()}

        page.get_by_role("link", name="Sign out").click()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/login")
        # The session cookies were cleared; the sign-in form set a fresh login_csrf.
        assert {c["name"] for c in context.cookies()} == {"__Host-nbpress_device", "__Host-login_csrf"}
        context.close()
