"""The recipients' own pages in headless Chromium: the code page, sign-out, and a password reset
from the link in a real mail (aiosmtpd on loopback). Screenshots go to tests/artifacts/.

Reuses the served portal and browser of test_browser.py (skipped with it when Chromium is missing).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from publish_server.extensions import db
from publish_server.models import Device, utcnow

from .conftest import TEST_PASSWORD
from .smtp_server import code_in, text_of
from .test_browser import ARTIFACTS, browser, enter_code, portal, smtp  # noqa: F401 (fixtures)

READER = "reader@example.org"
NEW_PASSWORD = "a quiet harbour under seven lanterns"


def mails(smtp, count: int, page) -> list:
    for _ in range(100):
        if len(smtp.inbox.to(READER)) >= count:
            break
        page.wait_for_timeout(50)
    return smtp.inbox.to(READER)


def sign_in_form(page, base, password: str = TEST_PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(READER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def add_twin_device(app) -> None:
    """A second device of the reader named like the first, added a week earlier from another address."""
    with app.app_context():
        first = db.session.scalars(db.select(Device)).one()
        earlier = utcnow() - dt.timedelta(days=7)
        db.session.add(Device(user_id=first.user_id, secret_hash="0" * 64, name=first.name, first_seen_at=earlier,
                              last_seen_at=earlier, trusted_until=utcnow() + dt.timedelta(days=20), last_ip="192.0.2.7"))
        db.session.commit()
        db.session.remove()


def test_code_page_resend_replaced_code_skip_link_touch_targets_and_sign_out_confirmation(portal, browser, smtp):
    app, base, _seeded = portal
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    sign_in_form(page, base)
    page.wait_for_url(f"{base}/login/verify**")
    help_text = page.locator("#code-help").inner_text()
    assert "r***@example.org" in help_text and "valid for 10 minutes" in help_text and READER not in page.content()

    # Verify is the primary button; "Send a new code" is secondary (outlined) and set apart from it.
    verify, resend = page.get_by_role("button", name="Verify"), page.get_by_role("button", name="Send a new code")
    style = "e => getComputedStyle(e).backgroundColor"
    assert verify.evaluate(style) != resend.evaluate(style) and resend.evaluate(style) == "rgb(255, 255, 255)"
    assert resend.bounding_box()["y"] - (verify.bounding_box()["y"] + verify.bounding_box()["height"]) > 40
    page.screenshot(path=str(ARTIFACTS / "portal-code-page.png"), full_page=True)

    # After a resend, the first code is told apart from a wrong one.
    old = code_in(mails(smtp, 1, page)[0])
    resend.click()
    page.wait_for_url(f"{base}/login/verify?sent=1**")
    page.get_by_label("Code").fill(old)
    page.get_by_role("button", name="Verify").click()
    if old != code_in(mails(smtp, 2, page)[1]):  # one in 10^8: the same code again
        assert "was replaced" in page.get_by_role("alert").inner_text()
    enter_code(page, smtp, base, 2)
    page.wait_for_url(f"{base}/")

    # Two devices with the same name are told apart (added, last seen, address); revoking looks destructive.
    add_twin_device(app)
    page.goto(f"{base}/account/devices")
    headings = page.locator("section.device h2").all_inner_texts()
    assert len(headings) == 2 and headings[0] != headings[1] and all("last seen" in h for h in headings)
    revokes = page.get_by_role("button", name=re.compile(r"^Revoke ")).all()
    names = {b.evaluate("e => e.textContent") for b in revokes}  # what a screen reader says
    assert len(names) == len(revokes) == 3  # two devices and "Revoke all other devices", each its own name
    assert {b.evaluate(style) for b in revokes} == {"rgb(164, 22, 26)"}
    page.screenshot(path=str(ARTIFACTS / "portal-devices.png"), full_page=True)
    page.goto(f"{base}/")

    # The first Tab reaches the skip link, shown on focus; following it moves focus to the content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("e => e === document.activeElement") and skip.bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # Control borders are dark enough (not the decorative #d5dce3); on a phone every control is >= 44 px tall.
    assert page.get_by_label("Title, variant, period or date").evaluate("e => getComputedStyle(e).borderTopColor") == "rgb(107, 117, 128)"
    page.set_viewport_size({"width": 375, "height": 740})
    heights = page.eval_on_selector_all("button, input:not([type=hidden]), select, nav a",
                                        "els => els.filter(e => e.offsetParent).map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44, heights
    page.fill("#filter-q", "no such period")
    page.get_by_role("button", name="Show").click()
    assert page.locator("p.empty").inner_text() == "No reports match these filters."
    assert page.locator("p.empty").evaluate(style) != "rgb(238, 246, 238)"  # not the green of success
    page.screenshot(path=str(ARTIFACTS / "portal-no-match-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1100, "height": 800})

    # Sign-out asks first; "Stay signed in" keeps the session.
    page.get_by_role("link", name="Sign out").click()
    page.wait_for_url(f"{base}/logout")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign out?"
    page.screenshot(path=str(ARTIFACTS / "portal-sign-out.png"), full_page=True)
    page.get_by_role("link", name="Stay signed in").click()
    page.wait_for_url(f"{base}/")
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login")
    page.context.close()


def test_password_reset_from_the_mailed_link(portal, browser, smtp, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    _app, base, _seeded = portal
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    page.goto(f"{base}/login")
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill(READER)
    page.get_by_role("button", name="Send me a link").click()
    assert "If an account uses that address" in page.get_by_role("status").inner_text()

    mail = mails(smtp, 1, page)[0]
    assert mail["Subject"] == "Reset your Notebook Press password"
    link = re.search(r"http://\S+/password/reset/(\S+)", text_of(mail))
    assert link, text_of(mail)
    token = link.group(1)
    page.goto(link.group(0))
    assert page.get_by_role("heading", level=1).inner_text() == "Choose a new password"
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal-password-reset.png"), full_page=True)
    page.get_by_role("button", name="Set new password").click()
    page.wait_for_url(f"{base}/login?done=reset")
    assert "every device signed out" in page.get_by_role("status").inner_text()
    assert mails(smtp, 2, page)[1]["Subject"] == "Your Notebook Press password was changed"

    # The link is used up; the new password signs in (with a code: this browser is a new device).
    page.goto(link.group(0))
    assert "expired or was already used" in page.get_by_role("alert").inner_text()
    sign_in_form(page, base, NEW_PASSWORD)
    enter_code(page, smtp, base, 3)
    page.wait_for_url(f"{base}/")

    # The development server logged the link's request line with the token masked.
    assert "/password/reset/***" in caplog.text and token not in caplog.text
    page.context.close()
