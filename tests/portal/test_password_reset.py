"""Self-service password reset: "Forgot password?", the emailed single-use link, and what it ends.

Through the real forms with the recording mailer (``MAIL_URL = memory:``); the mail goes out
when the answer is closed (``call_on_close``), as a WSGI server does after sending it. The
browser walk from a real SMTP server's mail is in test_recipient_pages_browser.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
import sqlalchemy as sa

from publish_server.extensions import db, limiter
from publish_server.log_masking import TokenMask
from publish_server.models import AuditEvent, Device, PasswordReset, utcnow

from .conftest import TEST_PASSWORD

EMAIL = "ana@example.org"
NEW_PASSWORD = "a quiet harbour under seven lanterns"


@pytest.fixture
def ana(make_user):
    return make_user(EMAIL)


def outbox(app) -> list:
    from publish_server.mail import mailer

    return mailer().sent


def ask(client, email: str, *, ip: str = "127.0.0.1"):
    """GET the form (for its double-submit cookie) and POST the address; the answer is closed (mail sent)."""
    environ = {"REMOTE_ADDR": ip}
    client.get("/password/forgot", environ_base=environ)
    response = client.post("/password/forgot", environ_base=environ,
                           data={"email": email, "reset_csrf": client.get_cookie("reset_csrf").value})
    response.close()
    return response


def link_in(message) -> str:
    found = re.search(r"http://localhost(/password/reset/[A-Za-z0-9_-]+)", message.get_body(preferencelist=("plain",)).get_content())
    assert found, "no reset link in the mail"
    return found.group(1)


def set_password(client, path: str, new: str = NEW_PASSWORD, again: str | None = None):
    form = client.get(path)
    token = path.rsplit("/", 1)[1]
    return form, client.post("/password/reset", data={"token": token, "new_password": new, "new_password_again": again or new,
                                                      "reset_csrf": client.get_cookie("reset_csrf").value})


def audit(event: str) -> list[str]:
    return [row.outcome for row in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))]


def test_the_link_sets_a_new_password_once_and_signs_out_every_session_and_device(app, client, ana, login):
    signed_in = app.test_client()
    login(signed_in, EMAIL)  # another browser, with a session and a trusted device
    assert signed_in.get("/account").status_code == 200
    assert 'href="/password/forgot"' in client.get("/login").get_data(as_text=True)

    answer = ask(client, EMAIL)
    assert answer.status_code == 200 and "works once, for 15 minutes" in answer.get_data(as_text=True)
    mail = outbox(app)[-1]
    assert str(mail["To"]).endswith(f"<{EMAIL}>") and mail["Subject"] == "Reset your Notebook Press password"
    path = link_in(mail)
    token = path.rsplit("/", 1)[1]
    stored = db.session.scalars(sa.select(PasswordReset)).one()
    assert stored.token_hash != token and token not in stored.token_hash  # only a hash is kept
    assert stored.expires_at - stored.created_at == dt.timedelta(minutes=15)

    # A weak password is refused by the same policy as a change; the link still works.
    form, weak = set_password(client, path, "password")
    assert form.status_code == 200 and 'name="token"' in form.get_data(as_text=True)
    assert weak.status_code == 400 and "new password" not in weak.headers.get("Location", "")
    _, done = set_password(client, path)
    assert done.status_code == 303 and done.headers["Location"] == "/login?done=reset"
    assert "every device signed out" in client.get("/login?done=reset").get_data(as_text=True)

    # Single use: the same link again (GET and POST) ends.
    again_form, again = set_password(client, path, "another long passphrase for later")
    assert again_form.status_code == 410 and again.status_code == 410
    assert "expired or was already used" in again.get_data(as_text=True)

    # The other browser's session and device ended; the old password no longer signs in.
    assert signed_in.get("/account").status_code in (302, 303)
    assert all(device.revoked_at is not None for device in db.session.scalars(sa.select(Device)))
    assert login(app.test_client(), EMAIL, TEST_PASSWORD).status_code == 401
    assert login(app.test_client(), EMAIL, NEW_PASSWORD).status_code == 303
    assert audit("password.reset_request") == ["sent"]
    assert audit("password.reset") == ["failed", "ok", "link_ended"]  # the ended link's POST is audited, its GET not
    assert "Your Notebook Press password was changed" in [m["Subject"] for m in outbox(app)]
    details = " ".join(str(row.detail) for row in db.session.scalars(sa.select(AuditEvent)))
    assert token not in details


def test_an_expired_link_and_an_older_link_do_not_work(app, client, ana):
    ask(client, EMAIL)
    first = link_in(outbox(app)[-1])
    ask(client, EMAIL)
    second = link_in(outbox(app)[-1])
    assert client.get(first).status_code == 410  # only the newest link works
    assert client.get(second).status_code == 200
    db.session.execute(sa.update(PasswordReset).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()
    _, expired = set_password(client, second)
    assert expired.status_code == 410
    assert client.get("/password/reset/" + "A" * 43).status_code == 410  # a made-up token
    assert client.get("/password/reset/not-a-token").status_code == 410


def test_known_unknown_and_disabled_addresses_get_the_same_answer_and_only_the_known_one_a_mail(app, client, ana, make_user):
    make_user("off@example.org", active=False)
    answers = [ask(client, email, ip=f"10.0.0.{i}") for i, email in enumerate((EMAIL, "nobody@example.org", "off@example.org"))]
    assert {a.status_code for a in answers} == {200}
    assert len({a.get_data() for a in answers}) == 1  # byte for byte (same form cookie, same page)
    assert [str(m["To"]) for m in outbox(app)] == [f"ana <{EMAIL}>"]
    assert audit("password.reset_request") == ["sent", "unknown_or_disabled", "unknown_or_disabled"]


def test_asking_is_limited_per_address_and_per_ip_whether_or_not_the_account_exists(app, client, ana):
    for email in (EMAIL, "nobody@example.org"):  # per address, from a new IP each time
        assert [ask(client, email, ip=f"10.1.{len(email)}.{i}").status_code for i in range(4)] == [200, 200, 200, 429]
    assert [ask(client, f"u{i}@example.org", ip="10.2.0.1").status_code for i in range(6)] == [200] * 5 + [429]
    assert len(outbox(app)) == 3


def test_the_forms_need_their_double_submit_value(app, client, ana):
    client.get("/password/forgot")
    assert client.post("/password/forgot", data={"email": EMAIL, "reset_csrf": "x" * 43}).status_code == 403
    assert "nbpress.mailer" not in app.extensions or outbox(app) == []
    ask(client, EMAIL)
    token = link_in(outbox(app)[-1]).rsplit("/", 1)[1]
    refused = app.test_client().post("/password/reset", data={"token": token, "new_password": NEW_PASSWORD,
                                                               "new_password_again": NEW_PASSWORD, "reset_csrf": "x" * 43})
    assert refused.status_code == 403
    assert client.get(f"/password/reset/{token}").status_code == 200  # nothing was used up


def test_the_token_in_a_request_line_is_masked_in_werkzeug_and_gunicorn_access_logs():
    token = "WvesiS8gx_IdAT4umsugFagMXzPGRIOjtXWUh6zmxbA"
    werkzeug = logging.LogRecord("werkzeug", logging.INFO, "", 0, '%s - - [%s] "%s" %s %s',
                                 ("127.0.0.1", "now", f"GET /password/reset/{token} HTTP/1.1", "200", "-"), None)
    gunicorn = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, '%(h)s "%(r)s" %(U)s', None, None)
    gunicorn.args = {"h": "127.0.0.1", "r": f"GET /password/reset/{token}?x=1 HTTP/1.1", "U": f"/password/reset/{token}"}
    for record in (werkzeug, gunicorn):
        assert TokenMask().filter(record)
        assert token not in record.getMessage() and "/password/reset/***" in record.getMessage()


def test_a_known_address_answers_as_fast_as_an_unknown_one_even_with_a_slow_mail_server(app, client, ana, monkeypatch):
    """The mail goes out after the answer: a 50 ms mail server must not make known addresses slower."""
    import statistics
    import time

    from publish_server.mail import RecordingMailer

    class SlowMailer(RecordingMailer):
        def send(self, message):
            time.sleep(0.05)
            super().send(message)

    app.extensions["nbpress.mailer"] = SlowMailer()
    monkeypatch.setattr(limiter, "enabled", False)  # 30 asks for one address: the limits are tested above
    client.get("/password/forgot")
    form = {"reset_csrf": client.get_cookie("reset_csrf").value}
    times: dict[str, list[float]] = {EMAIL: [], "nobody@example.org": []}
    for _ in range(15):
        for email in times:  # interleaved, so load on the machine hits both alike
            started = time.perf_counter()
            response = client.post("/password/forgot", data={**form, "email": email})
            times[email].append(time.perf_counter() - started)
            assert response.status_code == 200
            response.close()  # sends, outside the measured answer
    known, unknown = (statistics.median(t) for t in times.values())
    assert known < unknown + 0.025, (known, unknown)
    assert len(app.extensions["nbpress.mailer"].sent) == 15


def test_the_link_uses_public_url_when_it_is_set(app, client, ana, monkeypatch):
    """A proxy may forward another host name than the one recipients use: PUBLIC_URL is the address."""
    monkeypatch.setitem(app.config["NBPRESS"], "PUBLIC_URL", "https://reports.example.org/portal")
    ask(client, EMAIL)
    body = outbox(app)[-1].get_body(preferencelist=("plain",)).get_content()
    assert re.search(r"https://reports\.example\.org/portal/password/reset/[A-Za-z0-9_-]{20,}", body)
    assert "http://localhost" not in body
