"""Two-step sign-in: device check, emailed code, challenge rules (publish_server.signin.second_step, views.code and friends).

Each rule on codes and devices in docs/security-model.md has a test that fails when the rule
breaks. Codes are read from the recording mailer (the documented test double of the mail seam;
the real SMTP server is in test_mail.py and the browser test); time is controlled through the
injected clock ``NBPRESS_CLOCK``, never by sleeping.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from flask_jwt_extended import decode_token

from publish_server.extensions import db
from publish_server.models import AuditEvent, Device, LoginChallenge, utcnow
from publish_server.openapi import build_document
from tests.helpers import free_port

from .conftest import TEST_PASSWORD, api_sign_in, base_config, last_code

EMAIL = "ana@example.org"


@pytest.fixture
def ana(make_user):
    return make_user(EMAIL)


@pytest.fixture
def clock(app):
    """``clock.now`` is what the portal's services believe the time is; move it with ``clock.advance``."""

    class Clock:
        now = utcnow()

        def advance(self, **delta):
            self.now += dt.timedelta(**delta)

    controlled = Clock()
    app.config["NBPRESS_CLOCK"] = lambda: controlled.now
    return controlled


def sent(app, email=EMAIL):
    return [m for m in app.extensions["nbpress.mailer"].sent if email in str(m["To"])] if "nbpress.mailer" in app.extensions else []


def api_login(client, email=EMAIL, password=TEST_PASSWORD, ip="127.0.0.1", **extra):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password, **extra},
                       environ_base={"REMOTE_ADDR": ip})


def api_verify(client, started, code, ip="127.0.0.1"):
    return client.post("/api/v1/auth/verify", environ_base={"REMOTE_ADDR": ip}, json={
        "challenge_id": started["challenge_id"], "client_secret": started["client_secret"], "code": code})


def web_password(client, email=EMAIL, password=TEST_PASSWORD, ip="127.0.0.1", headers=None):
    client.get("/login")
    csrf = client.get_cookie("login_csrf")
    return client.post("/login", data={"email": email, "password": password, "login_csrf": csrf.value, "next": "/account"},
                       environ_base={"REMOTE_ADDR": ip}, headers=headers or {})


def web_verify(client, code, ip="127.0.0.1"):
    challenge = client.get_cookie("login_challenge")
    return client.post("/login/verify", environ_base={"REMOTE_ADDR": ip},
                       data={"challenge": challenge.value.partition(".")[0] if challenge else "", "code": code, "next": "/account"})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# --- the flow ----------------------------------------------------------------------------------


def test_a_new_browser_gets_a_code_and_nothing_else(app, client, ana):
    response = web_password(client)
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/verify")
    headers = " ".join(response.headers.getlist("Set-Cookie"))
    assert "access_token_cookie" not in headers and "refresh_token_cookie" not in headers
    [mail] = sent(app)
    code = last_code(app, EMAIL)
    assert len(code) == 8 and code.isdigit()
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and b"We sent a sign-in code" in page.data and code.encode() not in page.data
    assert code not in response.headers["Location"] and code not in headers
    # The partial state opens nothing: pages send us to sign in, the API refuses.
    assert client.get("/account").status_code == 303
    assert client.get("/api/v1/publications").status_code == 401


def test_the_right_code_trusts_the_device_and_the_next_sign_in_skips_the_code(app, client, ana):
    web_password(client)
    code = last_code(app, EMAIL)
    response = web_verify(client, code)
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    cookies = {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}
    device_cookie = cookies["nbpress_device"]
    assert "HttpOnly" in device_cookie and "SameSite=Strict" in device_cookie and "Path=/" in device_cookie
    max_age = int(device_cookie.split("Max-Age=")[1].split(";")[0])
    assert 0 < max_age <= 30 * 86400
    assert client.get("/account").status_code == 200
    device = db.session.scalars(sa.select(Device)).one()
    assert device.secret_hash != client.get_cookie("nbpress_device").value and len(device.secret_hash) == 64
    assert device.ips == ["127.0.0.1"] and device.mac_status.startswith("unknown: loopback")
    assert decode_token(client.get_cookie("access_token_cookie").value)["did"] == device.public_id
    notice = sent(app)[-1]
    assert notice["Subject"].startswith("New sign-in") and code not in notice.as_string() and "127.0.0.1" in notice.as_string()
    before = len(sent(app))
    again = web_password(client)
    assert again.status_code == 303 and again.headers["Location"] == "/account" and len(sent(app)) == before


def test_codes_are_stored_only_as_an_hmac_and_never_logged(app, client, ana, caplog):
    web_password(client)
    code = last_code(app, EMAIL)
    challenge = db.session.scalars(sa.select(LoginChallenge)).one()
    assert challenge.code_hmac != code and len(challenge.code_hmac) == 64 and code not in challenge.code_hmac
    web_verify(client, wrong(code))
    web_verify(client, code)
    audit = " ".join(str(row.detail) for row in db.session.scalars(sa.select(AuditEvent)))
    assert code not in audit and code not in caplog.text
    assert client.get_cookie("session") is None  # nothing in a Flask session cookie either


def test_code_length_follows_the_setting(tmp_path, make_user, app):
    app.config["NBPRESS"]["CODE_DIGITS"] = 6
    make_user(EMAIL)
    client = app.test_client()
    web_password(client)
    assert len(last_code(app, EMAIL)) == 6


# --- the attack list: codes ----------------------------------------------------------------------


def test_a_code_works_once(app, client, ana):
    started = api_login(client).get_json()
    code = last_code(app, EMAIL)
    assert api_verify(client, started, code).status_code == 200
    again = api_verify(client, started, code)
    assert again.status_code == 401 and again.get_json()["error"] == "challenge_ended"


def test_an_expired_code_is_refused(app, client, ana, clock):
    started = api_login(client).get_json()
    code = last_code(app, EMAIL)
    clock.advance(minutes=10, seconds=1)
    response = api_verify(client, started, code)
    assert response.status_code == 401 and response.get_json()["error"] == "challenge_ended"
    assert "access_token" not in response.get_json()


def test_a_code_just_inside_its_lifetime_works(app, client, ana, clock):
    started = api_login(client).get_json()
    clock.advance(minutes=9, seconds=59)
    assert api_verify(client, started, last_code(app, EMAIL)).status_code == 200


def test_another_users_code_and_another_challenges_code_are_refused(app, client, ana, make_user):
    make_user("bo@example.org")
    mine = api_login(client).get_json()
    my_code = last_code(app, EMAIL)
    theirs = api_login(client, "bo@example.org").get_json()
    their_code = last_code(app, "bo@example.org")
    second = api_login(client).get_json()  # a second challenge of mine
    second_code = last_code(app, EMAIL)
    assert api_verify(client, mine, their_code).status_code == 401
    assert api_verify(client, mine, second_code).status_code == 401
    assert api_verify(client, theirs, my_code).status_code == 401
    body = api_verify(client, second, second_code).get_json()
    assert decode_token(body["access_token"])["sub"] == ana.public_id


def test_a_challenge_is_bound_to_the_client_that_started_it(app, client, ana):
    started = api_login(client).get_json()
    code = last_code(app, EMAIL)
    stolen = dict(started, client_secret="x" * 43)
    assert api_verify(client, stolen, code).get_json()["error"] == "challenge_ended"
    # Browsers: the challenge cookie is the binding; another browser with the id and code gets nothing.
    web_password(client)
    web_code = last_code(app, EMAIL)
    challenge_id = client.get_cookie("login_challenge").value.partition(".")[0]
    other = app.test_client()
    response = other.post("/login/verify", data={"challenge": challenge_id, "code": web_code})
    assert response.status_code == 401 and other.get_cookie("access_token_cookie") is None
    # The form must repeat the id of this browser's challenge (no other site can post it).
    response = client.post("/login/verify", data={"challenge": "", "code": web_code})
    assert response.status_code == 401
    assert api_verify(client, started, code).status_code == 200  # the right client still can


def test_an_old_code_stops_working_after_a_resend(app, client, ana):
    started = api_login(client).get_json()
    old = last_code(app, EMAIL)
    response = client.post("/api/v1/auth/resend", json={k: started[k] for k in ("challenge_id", "client_secret")})
    assert response.status_code == 202
    new = last_code(app, EMAIL)
    if new != old:  # one in 10^8: the same code again
        answer = api_verify(client, started, old).get_json()
        assert answer["error"] == "code_replaced" and "replaced" in answer["message"]  # not just "wrong"
    assert api_verify(client, started, new).status_code == 200


def test_the_sixth_try_is_refused_even_with_the_right_code(app, client, ana):
    started = api_login(client).get_json()
    code = last_code(app, EMAIL)
    answers = [api_verify(client, started, wrong(code)).get_json()["error"] for _ in range(5)]
    assert answers == ["code_invalid"] * 4 + ["challenge_ended"]
    assert api_verify(client, started, code).get_json()["error"] == "challenge_ended"


def test_at_most_five_codes_per_account_per_hour(app, client, ana, clock):
    started = api_login(client).get_json()
    statuses = [client.post("/api/v1/auth/resend", json={k: started[k] for k in ("challenge_id", "client_secret")}).status_code
                for _ in range(5)]
    assert statuses == [202, 202, 202, 202, 429]
    assert api_login(client).status_code == 429  # a new challenge does not get around it
    assert len(sent(app)) == 5
    clock.advance(hours=1, seconds=1)
    assert api_login(client).status_code == 202


@pytest.mark.parametrize("code", ["1234 5678", " 12345678", "１２３４５６７８", "abcdefgh", "1234567", "123456789", "", None, [], {}, 12345678, True])
def test_malformed_codes_are_400_never_500(app, client, ana, code):
    started = api_login(client).get_json()
    response = api_verify(client, started, code)
    assert response.status_code == 400 and set(response.get_json()) == {"error", "message"}
    assert db.session.scalars(sa.select(LoginChallenge)).one().attempts == 0


@pytest.mark.parametrize("payload", [b"null", b"[]", b"{}", b'{"challenge_id": null, "client_secret": "x", "code": "1"}', b"not json"])
def test_malformed_verify_and_resend_bodies_are_400(client, payload):
    for path in ("/api/v1/auth/verify", "/api/v1/auth/resend"):
        assert client.post(path, data=payload, content_type="application/json").status_code == 400


def test_a_form_code_with_full_width_digits_is_refused(app, client, ana):
    web_password(client)
    code = last_code(app, EMAIL)
    full_width = "".join(chr(0xFF10 + int(d)) for d in code)
    response = web_verify(client, full_width)
    assert response.status_code == 400 and client.get_cookie("access_token_cookie") is None


# --- the attack list: devices ---------------------------------------------------------------------


def _trusted_api_device(app, client):
    body = api_sign_in(client, EMAIL)
    return body["device_token"]


@pytest.mark.parametrize("token", ["tampered", "foreign", "revoked"])
def test_a_tampered_foreign_or_revoked_device_needs_a_code(app, client, ana, make_user, token):
    mine = _trusted_api_device(app, client)
    assert api_login(client, device_token=mine).status_code == 200
    if token == "tampered":
        presented = mine[:-2] + ("AA" if not mine.endswith("AA") else "BB")
    elif token == "foreign":
        make_user("bo@example.org")
        presented = api_sign_in(client, "bo@example.org")["device_token"]
    else:
        presented = mine
        device = db.session.scalars(sa.select(Device).where(Device.user_id == ana.id)).one()
        device.revoked_at = utcnow()
        db.session.commit()
    assert api_login(client, device_token=presented).status_code == 202


def test_revoking_a_device_ends_its_sessions_at_once(app, client, ana):
    body = api_sign_in(client, EMAIL)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/publications", headers=headers).status_code == 200
    db.session.scalars(sa.select(Device)).one().revoked_at = utcnow()
    db.session.commit()
    assert client.get("/api/v1/publications", headers=headers).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {body['refresh_token']}"}).status_code == 401


def test_an_expired_device_needs_a_code(app, client, ana, clock):
    token = _trusted_api_device(app, client)
    clock.advance(days=30, seconds=1)
    assert api_login(client, device_token=token).status_code == 202


@pytest.mark.parametrize(("policy", "new_ip", "needs_code"), [
    ("prefix", "10.0.0.77", False), ("prefix", "10.0.1.5", True), ("exact", "10.0.0.6", True),
    ("exact", "10.0.0.5", False), ("off", "192.0.2.9", False),
])
def test_the_ip_policy(app, client, ana, policy, new_ip, needs_code):
    app.config["NBPRESS"]["DEVICE_IP_POLICY"] = policy
    started = api_login(client, ip="10.0.0.5").get_json()
    token = api_verify(client, started, last_code(app, EMAIL), ip="10.0.0.5").get_json()["device_token"]
    assert api_login(client, ip=new_ip, device_token=token).status_code == (202 if needs_code else 200)


def test_a_new_ip_is_added_to_the_device_after_its_code(app, client, ana):
    app.config["NBPRESS"]["DEVICE_IP_POLICY"] = "exact"
    token = _trusted_api_device(app, client)
    started = api_login(client, ip="10.0.0.6", device_token=token).get_json()
    token = api_verify(client, started, last_code(app, EMAIL), ip="10.0.0.6").get_json()["device_token"]
    device = db.session.scalars(sa.select(Device)).one()  # the same device, not a second one
    assert device.ips == ["127.0.0.1", "10.0.0.6"]
    assert api_login(client, ip="10.0.0.6", device_token=token).status_code == 200


def test_forged_forwarded_for_and_mac_headers_have_no_effect(app, client, ana):
    app.config["NBPRESS"]["DEVICE_IP_POLICY"] = "exact"
    token = _trusted_api_device(app, client)  # verified from 127.0.0.1
    forged = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1", "X-MAC-Address": "02:00:00:00:00:01"}
    response = client.post("/api/v1/auth/login", headers=forged, environ_base={"REMOTE_ADDR": "10.9.9.9"},
                           json={"email": EMAIL, "password": TEST_PASSWORD, "device_token": token})
    assert response.status_code == 202  # the peer address counts, not what the client claims
    started = response.get_json()
    api_verify(client, started, last_code(app, EMAIL), ip="10.9.9.9")
    device = db.session.scalars(sa.select(Device)).one()
    assert "02:00:00:00:00:01" not in device.macs and device.ips[-1] == "10.9.9.9"
    rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "login.challenge")).all()
    assert rows[-1].ip == "10.9.9.9"


def test_forwarded_for_counts_only_from_configured_proxies(tmp_path, database_url):
    from flask_migrate import upgrade

    from publish_server import create_app
    from publish_server.models import User
    from publish_server.signin.password_step import passwords

    app = create_app(base_config(DATABASE_URL=database_url, TRUSTED_PROXIES=1), instance_path=tmp_path / "proxied")
    with app.app_context():
        if not database_url:
            upgrade()
        db.session.add(User(email=EMAIL, password_hash=passwords().hash(TEST_PASSWORD)))
        db.session.commit()
        client = app.test_client()
        client.post("/api/v1/auth/login", json={"email": EMAIL, "password": TEST_PASSWORD},
                    headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.1"})
        row = db.session.scalars(sa.select(LoginChallenge)).one()
        assert row.ip == "198.51.100.1"  # one proxy: only the address it added counts
        db.session.remove()
        db.engine.dispose()


# --- mail failures ---------------------------------------------------------------------------------


def test_an_smtp_failure_says_try_again_and_leaves_nothing_open(app, client, ana, caplog):
    from publish_server.mail import SmtpMailer

    app.extensions["nbpress.mailer"] = SmtpMailer("127.0.0.1", free_port(), "plain", timeout=2)  # nobody listens
    response = web_password(client)
    assert response.status_code == 503 and b"could not send the code" in response.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginChallenge)) == 0
    assert client.get_cookie("login_challenge") is None
    assert "not sent" in caplog.text
    api = api_login(client)
    assert api.status_code == 503 and api.get_json()["error"] == "code_not_sent"
    failed = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.outcome == "mail_failed")).all()
    assert len(failed) == 2


def test_answers_the_portal_could_not_give_cost_no_tries_of_the_per_ip_limit(app, client, ana):
    """A 503 (here: the mail server away) evaluated nothing: a PostgreSQL restart or an SMTP outage
    must not use up the sign-in limit of everyone behind one address."""
    from publish_server.mail import SmtpMailer

    app.config["NBPRESS"] = {**app.config["NBPRESS"], "RATELIMIT_SIGNIN_PER_IP": "2 per minute"}
    app.extensions["nbpress.mailer"] = SmtpMailer("127.0.0.1", free_port(), "plain", timeout=2)  # nobody listens
    assert [api_login(client).status_code for _ in range(4)] == [503] * 4
    wrong = [client.post("/api/v1/auth/login", json={"email": EMAIL, "password": "not the password"}).status_code
             for _ in range(3)]
    assert wrong == [401, 401, 429]  # failures still count: exactly the limit's two


def test_the_verify_endpoints_are_in_the_openapi_document(app):
    from openapi_spec_validator import validate

    document = build_document(app)
    validate(document)
    assert {"200", "400", "401"} <= set(document["paths"]["/api/v1/auth/verify"]["post"]["responses"])
    assert "202" in document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "202" in document["paths"]["/api/v1/auth/resend"]["post"]["responses"]


# --- devices page, password change, admin CLI -----------------------------------------------------


def csrf(client):
    return client.get_cookie("csrf_access_token").value


def test_the_devices_page_lists_renames_and_revokes(app, client, ana, login):
    other = app.test_client()
    login(other, EMAIL)  # first device
    other_device = db.session.scalars(sa.select(Device)).one()
    client.set_cookie("nbpress_device", "")  # a second browser: its own code, its own device
    web_password(client)
    web_verify(client, last_code(app, EMAIL))
    page = client.get("/account/devices")
    assert page.status_code == 200 and b"(this device)" in page.data and other_device.public_id.encode() in page.data
    renamed = client.post(f"/account/devices/{other_device.public_id}/rename", data={"csrf_token": csrf(client), "name": "Office PC"})
    assert renamed.status_code == 303
    assert b"Office PC" in client.get("/account/devices").data
    assert client.post(f"/account/devices/{other_device.public_id}/rename", data={"name": "x"}).status_code == 403  # CSRF
    assert other.get("/account").status_code == 200
    client.post(f"/account/devices/{other_device.public_id}/revoke", data={"csrf_token": csrf(client)})
    assert other.get("/account").status_code == 303  # its session ended at once
    assert client.get("/account").status_code == 200


def test_another_users_device_is_not_found(app, client, ana, make_user, login):
    make_user("bo@example.org")
    bo = app.test_client()
    login(bo, "bo@example.org")
    bos = db.session.scalars(sa.select(Device)).one()
    login(client, EMAIL)
    response = client.post(f"/account/devices/{bos.public_id}/revoke", data={"csrf_token": csrf(client)})
    assert response.status_code == 404
    db.session.refresh(bos)
    assert bos.revoked_at is None


def test_revoke_all_others_keeps_this_device(app, client, ana, login):
    others = [app.test_client() for _ in range(2)]
    for other in others:
        other.set_cookie("nbpress_device", "")
        web_password(other)
        web_verify(other, last_code(app, EMAIL))
    login(client, EMAIL)
    client.set_cookie("nbpress_device", "")
    web_password(client)
    web_verify(client, last_code(app, EMAIL))
    client.post("/account/devices/revoke-others", data={"csrf_token": csrf(client)})
    assert [o.get("/account").status_code for o in others] == [303, 303]
    assert client.get("/account").status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device).where(Device.revoked_at.is_(None))) == 1


def test_a_password_change_revokes_every_device(app, client, ana, login):
    login(client, EMAIL)
    token = api_sign_in(client, EMAIL)["device_token"]
    response = client.post("/account/password", data={"csrf_token": csrf(client), "current_password": TEST_PASSWORD,
                                                      "new_password": "a brand new passphrase 77", "new_password_again": "a brand new passphrase 77"})
    assert response.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device).where(Device.revoked_at.is_(None))) == 0
    assert api_login(client, password="a brand new passphrase 77", device_token=token).status_code == 202


def test_a_password_change_is_mailed_to_the_owner_without_the_password(app, client, ana, login):
    login(client, EMAIL)
    before = len(sent(app))
    new = "a brand new passphrase 77"
    response = client.post("/account/password", data={"csrf_token": csrf(client), "current_password": TEST_PASSWORD,
                                                      "new_password": new, "new_password_again": new})
    assert response.status_code == 303
    [notice] = sent(app)[before:]
    text = notice.get_body(preferencelist=("plain",)).get_content()
    assert notice["Subject"] == "Your Notebook Press password was changed" and "was changed" in text
    assert new not in notice.as_string() and TEST_PASSWORD not in notice.as_string()
    refused = client.post("/account/password", data={"csrf_token": csrf(client), "current_password": "wrong wrong wrong",
                                                     "new_password": new + "x", "new_password_again": new + "x"})
    assert refused.status_code in (303, 400) and len(sent(app)) == before + 1  # a refused change mails nothing


def test_admin_cli_lists_and_revokes_devices(app, client, ana, login):
    login(client, EMAIL)
    device = db.session.scalars(sa.select(Device)).one()
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["devices", "list", EMAIL])
    assert listed.exit_code == 0 and device.public_id in listed.output and "127.0.0.1" in listed.output
    assert runner.invoke(args=["devices", "revoke", EMAIL]).exit_code == 1  # neither id nor --all
    assert runner.invoke(args=["devices", "revoke", EMAIL, "nope"]).exit_code == 1
    done = runner.invoke(args=["devices", "revoke", EMAIL, device.public_id])
    assert done.exit_code == 0 and "revoked device" in done.output
    assert client.get("/account").status_code == 303
    login(client, EMAIL)
    assert runner.invoke(args=["devices", "revoke", EMAIL, "--all"]).exit_code == 0
    assert client.get("/account").status_code == 303
    assert runner.invoke(args=["users", "reset-password", EMAIL]).exit_code == 0


# --- brute force: per account ----------------------------------------------------------------------


def test_an_attacker_from_many_ips_is_slowed_down_while_the_owner_keeps_working(app, client, ana, clock):
    token = _trusted_api_device(app, client)
    attacker = app.test_client()
    for n in range(10):  # each from its own address, so the per-IP limit never sees them
        assert api_login(attacker, password="not the password!", ip=f"198.51.100.{n}").status_code == 401
    blocked = api_login(attacker, ip="198.51.100.200")  # even the right password waits
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "too_many_requests"
    assert api_login(client, device_token=token).status_code == 200  # the owner's device is exempt
    clock.advance(seconds=2)  # the delay after 10 failures is 2 s; the 11th failure makes it 4 s
    assert api_login(attacker, password="not the password!", ip="198.51.100.201").status_code == 401
    clock.advance(seconds=3)
    assert api_login(attacker, ip="198.51.100.202").status_code == 429  # 4 s after the latest failure
    clock.advance(seconds=1)
    assert api_login(attacker, ip="198.51.100.203").status_code == 202


def test_the_hourly_failure_cap(app, client, ana, clock):
    app.config["NBPRESS"]["LOGIN_FAILURES_PER_HOUR"] = 10
    for n in range(10):
        api_login(client, password="not the password!", ip=f"198.51.100.{n}")
    clock.advance(minutes=30)
    assert api_login(client, ip="198.51.100.99").status_code == 429
    web = web_password(app.test_client(), ip="198.51.100.98")
    assert web.status_code == 429 and b"Too many attempts" in web.data
    clock.advance(minutes=31)
    assert api_login(client, ip="198.51.100.97").status_code == 202


def _answers(client, email, attempts):
    """(status, body) of each wrong-password attempt, each from its own address, then the right one."""
    seen = [api_login(client, email=email, password="not the password!", ip=f"198.51.100.{n}") for n in range(attempts)]
    seen.append(api_login(client, email=email, ip="198.51.100.250"))
    return [(r.status_code, r.get_json()) for r in seen]


@pytest.mark.parametrize("cap", [10, 100])  # the hard cap, and the growing delay after 10 failures
def test_unknown_and_existing_accounts_are_braked_alike(app, client, ana, clock, cap):
    app.config["NBPRESS"]["LOGIN_FAILURES_PER_HOUR"] = cap
    existing = _answers(client, EMAIL, 12)
    unknown = _answers(client, "nobody@example.org", 12)
    assert [status for status, _ in existing] == [401] * 10 + [429] * 3  # the right password waits too
    assert unknown == existing  # status and body: nothing tells the accounts apart
    clock.advance(hours=1, seconds=1)
    assert api_login(client, ip="198.51.100.251").status_code == 202  # the window has passed


def test_a_device_token_from_another_network_does_not_lift_the_brake(app, client, ana, clock):
    app.config["NBPRESS"]["LOGIN_FAILURES_PER_HOUR"] = 10
    token = _trusted_api_device(app, client)  # trusted from 127.0.0.1
    for n in range(10):
        api_login(client, password="not the password!", ip=f"198.51.100.{n}")
    elsewhere = api_login(app.test_client(), device_token=token, ip="203.0.113.9")  # the device's checks fail here
    assert elsewhere.status_code == 429
    mails = len(sent(app))
    assert api_login(app.test_client(), password="not the password!", device_token=token, ip="203.0.113.9").status_code == 429
    assert len(sent(app)) == mails  # no code mailed, so nothing confirms the password either
    assert api_login(client, device_token=token).status_code == 200  # from where it is trusted, the owner goes on


def test_verify_is_rate_limited_per_ip(app, client, ana):
    started = api_login(client).get_json()
    statuses = {api_verify(client, dict(started, client_secret="x" * 43), "12345678").status_code for _ in range(31)}
    assert 429 in statuses


def test_public_ids_never_look_like_command_line_options():
    from publish_server.models import new_public_id

    ids = [new_public_id() for _ in range(2000)]  # 1 in 64 token_urlsafe values starts with "-"
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)
