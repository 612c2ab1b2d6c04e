"""Sign-in, tokens, sign-out, refresh and the account page (publish_server.signin.views.password and friends).

Each rule on passwords and sessions in docs/security-model.md has a test here that fails when
the rule is broken. Tokens are forged with PyJWT where a test needs a bad one; nothing under test
is mocked (a counting wrapper around the Argon2 hasher only observes calls).
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_migrate import upgrade

from publish_server import create_app
from publish_server.signin import password_step
from publish_server.extensions import db
from publish_server.models import AuditEvent, RevokedToken, User, utcnow
from publish_server.openapi import build_document
from publish_server.errors import PasswordRejected
from publish_server.signin.passwords import Passwords
from publish_server.signin.session import api_user_required, login_required_page, safe_next
from publish_server.settings import SETTINGS

from .conftest import TEST_PASSWORD, api_sign_in, base_config, last_code

EMAIL = "ana@example.org"
NEW_PASSWORD = "a brand new passphrase 77"
GENERIC = "Email or password is incorrect."


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def probe(app):
    """Two tiny protected views (added before the first request) to test the decorators alone."""
    from flask_jwt_extended import get_current_user

    @login_required_page
    def page():
        return f"page for {get_current_user().email}"

    @api_user_required
    def api():
        return {"email": get_current_user().email}

    app.add_url_rule("/_probe/page", "probe_page", page, methods=["GET", "POST"])
    app.add_url_rule("/api/_probe", "probe_api", api)
    return app


@pytest.fixture
def ana(make_user):
    return make_user(EMAIL)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def api_pair(client, email=EMAIL, password=TEST_PASSWORD) -> dict:
    return api_sign_in(client, email, password)


def cookie(client, name: str, path: str = "/") -> str | None:
    found = client.get_cookie(name, path=path)
    return found.value if found else None


def set_cookie_headers(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def audit_rows(event: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)))


def forged(app, *, key: str | None = None, algorithm: str = "HS256", **claims) -> str:
    """A token made outside flask-jwt-extended, valid except for what ``claims`` change."""
    now = int(time.time())
    user = db.session.scalars(sa.select(User)).first()
    payload = {"sub": user.public_id, "type": "access", "jti": f"forged-{now}", "iat": now, "nbf": now,
               "exp": now + 300, "iss": "nbpress-portal", "aud": "nbpress", "fresh": False, "csrf": "x",
               "issued_us": now * 1_000_000 + 999_999, **claims}
    secret = key if key is not None else app.config["JWT_SECRET_KEY"]
    return pyjwt.encode(payload, secret if algorithm != "none" else None, algorithm=algorithm)


# --- passwords ----------------------------------------------------------------------------


def _defaults() -> dict:
    return {s.name: s.default for s in SETTINGS if not s.required}


def test_default_hash_is_argon2id_with_at_least_19_mib_and_two_passes():
    stored = Passwords.from_settings(_defaults()).hash("some passphrase here")
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
    assert match, stored[:30]
    memory, passes, lanes = map(int, match.groups())
    assert memory >= 19456 and passes >= 2 and lanes == 1


@pytest.mark.parametrize(("password", "fragment"), [
    ("short pass", "at least 12"),
    ("x" * 129, "at most 128"),
    ("password1234", "too common"),
    (EMAIL, "too common"),
])
def test_policy_rejects(password, fragment):
    with pytest.raises(PasswordRejected, match=fragment):
        Passwords.from_settings(_defaults()).check_policy(password, email=EMAIL)


def test_policy_counts_length_after_nfkc_and_verify_accepts_the_equivalent_form():
    hasher = Passwords(memory_kib=64, time_cost=1)
    assert hasher.check_policy("ｆｕｌｌｗｉｄｔｈ ｐａｓｓ") == "fullwidth pass"
    assert hasher.check_policy("\ufb01" * 6) == "fi" * 6  # six ligatures are twelve letters after NFKC
    with pytest.raises(PasswordRejected):
        hasher.check_policy("\ufb01" * 5)
    stored = hasher.hash("ｆｕｌｌｗｉｄｔｈ ｐａｓｓ")
    assert hasher.verify(stored, "fullwidth pass")


class CountingHasher:
    """Delegates to the real Argon2 hasher and counts calls (an observer, not a mock)."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def counting(app):
    hasher = password_step.passwords()
    spy = CountingHasher(hasher.hasher)
    hasher.hasher = spy
    yield spy
    hasher.hasher = spy.real


def test_too_long_new_password_is_refused_before_hashing(app, client, ana, login, counting):
    login(client, EMAIL)
    counting.calls.clear()
    response = client.post("/account/password", data={
        "csrf_token": cookie(client, "csrf_access_token"), "current_password": TEST_PASSWORD,
        "new_password": "y" * 100_000, "new_password_again": "y" * 100_000})
    assert response.status_code == 400 and b"at most 128" in response.data
    assert counting.calls == []  # neither the new nor the current password was hashed


@pytest.mark.parametrize("case", ["unknown", "wrong", "disabled"])
def test_every_failed_login_runs_exactly_one_argon2_verification(app, client, make_user, counting, case):
    make_user(EMAIL, active=case != "disabled")
    email = "nobody@example.org" if case == "unknown" else EMAIL
    password = "not the password at all" if case == "wrong" else TEST_PASSWORD
    counting.calls.clear()
    assert client.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code == 401
    assert counting.calls == ["verify"]


def test_login_rehashes_when_parameters_rose(app, client, make_user, login):
    user = make_user(EMAIL)
    user.password_hash = Passwords(memory_kib=32, time_cost=1).hash(TEST_PASSWORD)
    db.session.commit()
    assert login(client, EMAIL).status_code == 303
    db.session.refresh(user)
    assert "$m=64,t=1,p=1$" in user.password_hash  # the app's (test) parameters
    assert Passwords.from_settings(app.config["NBPRESS"]).verify(user.password_hash, TEST_PASSWORD)


# --- web sign-in --------------------------------------------------------------------------


def test_login_sets_httponly_samesite_strict_cookies_and_redirects_to_next(client, ana, login):
    response = login(client, EMAIL, next="/reports/weekly?q=1")
    assert response.status_code == 303 and response.headers["Location"] == "/reports/weekly?q=1"
    cookies = set_cookie_headers(response)
    for name in ("access_token_cookie", "refresh_token_cookie"):
        assert "HttpOnly" in cookies[name] and "SameSite=Strict" in cookies[name] and "Secure" not in cookies[name]
    assert all("Path=/;" in header or header.endswith("Path=/") for header in cookies.values())
    assert "SameSite=Strict" in cookies["csrf_access_token"]
    assert client.get("/account").status_code == 200


HTTPS = "https://localhost"
HOST_COOKIES = {f"__Host-{name}" for name in (
    "login_csrf", "login_challenge", "nbpress_device", "access_token_cookie", "refresh_token_cookie",
    "csrf_access_token", "csrf_refresh_token")}


def _hidden(page, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.get_data(as_text=True))
    assert found, f"no hidden {name} field"
    return found.group(1)


def test_every_cookie_is_host_prefixed_secure_and_path_root_when_cookies_are_secure(tmp_path, database_url):
    """With COOKIE_SECURE every cookie the portal sets or clears is ``__Host-``: Secure, Path=/, no Domain.

    Browsers refuse a ``__Host-`` cookie without those, so a sub-domain or a plain-HTTP page cannot
    plant or overwrite one. Walks the whole browser flow over HTTPS and checks every Set-Cookie.
    """
    app = create_app(base_config(COOKIE_SECURE=True, DATABASE_URL=database_url), instance_path=tmp_path / "secure")
    with app.app_context():
        if not database_url:
            upgrade()
        # A one-time password, so the flow includes the password change and its new session.
        db.session.add(User(email=EMAIL, display_name="ana", password_hash=password_step.passwords().hash(TEST_PASSWORD),
                            must_change_password=True))
        db.session.commit()
        client = app.test_client()
        names: set[str] = set()

        def go(method: str, path: str, status: int, **kwargs):
            response = client.open(path, method=method, base_url=HTTPS, **kwargs)
            for header in response.headers.getlist("Set-Cookie"):
                first, *attributes = [part.strip() for part in header.split(";")]
                names.add(first.partition("=")[0])
                flags = {key.lower(): value for key, _, value in (a.partition("=") for a in attributes)}
                assert first.startswith("__Host-"), (method, path, header)
                assert "secure" in flags and flags.get("path") == "/" and "domain" not in flags, (method, path, header)
                assert flags.get("samesite") == "Strict", (method, path, header)
            assert response.status_code == status, (method, path, response.status_code)
            return response

        form = go("GET", "/login", 200)
        verify = go("POST", "/login", 303, data={"email": EMAIL, "password": TEST_PASSWORD, "login_csrf": _hidden(form, "login_csrf")})
        page = go("GET", verify.headers["Location"], 200)
        signed_in = go("POST", "/login/verify", 303, data={"challenge": _hidden(page, "challenge"), "code": last_code(app, EMAIL)})
        go("GET", signed_in.headers["Location"], 200)

        def csrf(name: str) -> str:
            found = client.get_cookie(f"__Host-csrf_{name}_token")
            return found.value if found else ""

        go("POST", "/account/password", 303, data={"csrf_token": csrf("access"), "current_password": TEST_PASSWORD,
                                                   "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD})
        go("GET", "/auth/refresh?next=/account", 303)
        go("POST", "/auth/refresh", 204, headers={"X-CSRF-TOKEN": csrf("refresh")})
        go("GET", "/account", 200)
        go("POST", "/logout", 303, data={"csrf_token": csrf("access")})
        go("GET", "/auth/refresh?next=/", 303)  # signed out: the hop clears the session cookies
        go("GET", "/login/verify", 401)  # no challenge: the verify page clears its cookie
        db.session.remove()
        db.engine.dispose()

    assert names == HOST_COOKIES  # every cookie of the flow was seen (and checked) at least once


@pytest.mark.parametrize("target", [
    "//evil.com", "/\\evil.com", "\t//evil.com", "https://evil.com", "/%5Cevil.com", "/%2F%2Fevil.com",
    "/%252F%252Fevil.com", "http:/evil.com", "javascript:alert(1)", " //evil.com", "/\r\nLocation: x",
    "evil.com", "", None, "/%09/evil.com",
])
def test_safe_next_refuses_anything_that_could_leave_the_site(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/account", "/reports/weekly?q=2026-W47&report=a", "/p/abc/download"])
def test_safe_next_keeps_local_paths(target):
    assert safe_next(target) == target


def test_login_form_refuses_an_open_redirect(client, ana, login):
    response = login(client, EMAIL, next="//evil.com/x")
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_unknown_user_wrong_password_and_disabled_account_look_the_same(app, client, make_user, login):
    make_user(EMAIL)
    make_user("off@example.org", active=False)
    answers = []
    for email, password in [("nobody@example.org", TEST_PASSWORD), (EMAIL, "wrong password here"), ("off@example.org", TEST_PASSWORD)]:
        response = login(client, email, password)
        answers.append((response.status_code, response.get_data(as_text=True).replace(email, "EMAIL"), "access_token_cookie" in set_cookie_headers(response)))
        api = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        answers.append((api.status_code, api.get_data(as_text=True), None))
    assert answers[0][0] == 401 and GENERIC in answers[0][1] and answers[0][2] is False
    assert answers[0] == answers[2] == answers[4]
    assert answers[1] == answers[3] == answers[5] and answers[1][0] == 401 and GENERIC in answers[1][1]
    assert [row.outcome for row in audit_rows("login.password")] == ["failed"] * 6


def test_login_email_is_normalised(client, ana, login):
    assert login(client, "  ANA@Example.ORG ").status_code == 303


@pytest.mark.parametrize("case", ["missing", "foreign"])
def test_login_form_needs_its_own_csrf_token(app, client, ana, case):
    other = app.test_client()
    other.get("/login")
    client.get("/login")
    token = "" if case == "missing" else cookie(other, "login_csrf")
    response = client.post("/login", data={"email": EMAIL, "password": TEST_PASSWORD, "login_csrf": token})
    assert response.status_code == 403
    assert "access_token_cookie" not in set_cookie_headers(response)
    assert audit_rows("login.password") == []


def test_get_requests_change_nothing(app, client, ana, login):
    client.get("/login?next=/account")
    assert audit_rows("login.password") == [] and cookie(client, "access_token_cookie") is None
    login(client, EMAIL)
    confirm = client.get("/logout")  # the confirmation page: it asks, the POST signs out
    assert confirm.status_code == 200 and b"Sign out?" in confirm.data
    # Back on /logout once signed out, the sign-in form does not lead back to "Sign out?".
    assert b'name="next" value=""' in app.test_client().get("/login?next=/logout").data
    assert client.get("/account").status_code == 200  # still signed in
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RevokedToken)) == 0


def test_login_is_rate_limited_per_ip(client, ana, login):
    for _ in range(10):
        assert login(client, EMAIL, "wrong password here").status_code == 401
    assert login(client, EMAIL).status_code == 429  # even the right password waits
    for _ in range(10):
        client.post("/api/v1/auth/login", json={"email": EMAIL, "password": "wrong password here"})
    blocked = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": TEST_PASSWORD})
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "too_many_requests"


def test_must_change_password_sends_the_user_to_the_account_page(make_user, client, login):
    user = make_user(EMAIL)
    user.must_change_password = True
    db.session.commit()
    response = login(client, EMAIL)
    assert response.headers["Location"] == "/account?reason=change"
    assert b"choose a new password" in client.get(response.headers["Location"]).data
    # Until the one-time password is replaced, every other page leads back to the account page.
    for path in ("/", "/reports/weekly", "/p/abcdefghijklmnopqrstuv/download"):
        elsewhere = client.get(path)
        assert elsewhere.status_code == 302 and elsewhere.headers["Location"] == "/account?reason=change", path
    assert client.get("/logout").status_code == 200  # but signing out (and asking first) stays open


# --- JWT rules ----------------------------------------------------------------------------


def test_a_valid_bearer_token_works(client, ana, probe, api_token):
    assert client.get("/api/_probe", headers=bearer(api_token(client, EMAIL))).get_json() == {"email": EMAIL}


@pytest.mark.parametrize("change", [
    {"algorithm": "none"},
    {"key": "another key that is long enough to be a real key"},
    {"iss": "someone-else"},
    {"aud": "another-audience"},
    {"type": "refresh"},
    {"exp": int(time.time()) - 5},
    {"nbf": int(time.time()) + 600},
])
def test_bad_tokens_are_refused(app, client, ana, probe, change):
    control = forged(app)
    assert client.get("/api/_probe", headers=bearer(control)).status_code == 200  # the forge itself is sound
    token = forged(app, **change)
    response = client.get("/api/_probe", headers=bearer(token))
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    client.set_cookie("access_token_cookie", token)
    assert client.get("/_probe/page").status_code == 303


def test_refresh_token_is_not_an_access_token_and_vice_versa(client, ana, probe):
    pair = api_pair(client)
    assert client.get("/api/_probe", headers=bearer(pair["refresh_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(pair["access_token"])).status_code == 401


def test_expired_access_token_is_refused(app, client, ana, probe):
    token = create_access_token(identity=ana.public_id, expires_delta=dt.timedelta(seconds=-1))
    assert client.get("/api/_probe", headers=bearer(token)).status_code == 401


def test_tokens_of_a_disabled_account_stop_working(client, ana, probe):
    pair = api_pair(client)
    ana.active = False
    db.session.commit()
    assert client.get("/api/_probe", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401


# --- API sign-in, refresh, sign-out -------------------------------------------------------


def test_api_login_answers_bearer_tokens(app, client, ana):
    api_pair(client)  # the first sign-in verifies this client with an emailed code
    body = api_pair(client)
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "password_change_required"}
    assert body["password_change_required"] is False
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    access = decode_token(body["access_token"])
    assert access["sub"] == ana.public_id and access["type"] == "access" and access["exp"] - access["iat"] == 900
    assert decode_token(body["refresh_token"])["jti"] == access["rjti"]


@pytest.mark.parametrize("payload", [
    b"not json", b"null", b"[]", b'"text"', b"{}", b'{"email": "a@b.c"}', b'{"email": 5, "password": "x"}',
    b'{"email": "a@b.c", "password": null}', b'{"email": ["a"], "password": "x"}', b'{"email": "a@b.c", "password": {"x": 1}}',
    b'{"email": "' + b"a" * 300 + b'", "password": "x"}',
])
def test_api_login_refuses_malformed_bodies_with_400(client, payload):
    response = client.post("/api/v1/auth/login", data=payload, content_type="application/json")
    assert response.status_code == 400
    assert set(response.get_json()) == {"error", "message"}


def test_api_refresh_rotates_and_the_old_refresh_token_stops_working(client, ana, probe):
    first = api_pair(client)
    response = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert response.status_code == 200
    second = response.get_json()
    assert client.get("/api/_probe", headers=bearer(second["access_token"])).status_code == 200
    assert decode_token(second["refresh_token"])["session_start"] == decode_token(first["refresh_token"])["session_start"]
    assert client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 200


def _refresh_token(user, **claims) -> str:
    return create_refresh_token(identity=user.public_id, additional_claims=claims)


def test_refresh_refuses_a_session_past_its_absolute_lifetime(app, client, ana):
    hours = app.config["NBPRESS"]["SESSION_HOURS"]
    now = int(time.time())
    assert client.post("/api/v1/auth/refresh", headers=bearer(_refresh_token(ana, session_start=now - hours * 3600 + 60))).status_code == 200
    old = _refresh_token(ana, session_start=now - hours * 3600 - 60)
    response = client.post("/api/v1/auth/refresh", headers=bearer(old))
    assert response.status_code == 401 and response.get_json()["error"] == "session_expired"
    assert client.post("/api/v1/auth/refresh", headers=bearer(_refresh_token(ana))).status_code == 401  # no session_start


def test_rotated_tokens_never_outlive_the_session(app, client, ana):
    hours = app.config["NBPRESS"]["SESSION_HOURS"]
    start = int(time.time()) - hours * 3600 + 120  # two minutes left
    body = client.post("/api/v1/auth/refresh", headers=bearer(_refresh_token(ana, session_start=start))).get_json()
    end = start + hours * 3600
    assert decode_token(body["refresh_token"])["exp"] <= end and decode_token(body["access_token"])["exp"] <= end
    assert body["expires_in"] <= 120


def test_refresh_refuses_an_idle_session(app, client, ana):
    idle = app.config["NBPRESS"]["SESSION_IDLE_MINUTES"]
    ana.tokens_valid_after = utcnow() - dt.timedelta(hours=2)  # so the back-dated tokens are not refused for that
    db.session.commit()
    now = time.time()
    start = int(now) - 3600
    recent = _refresh_token(ana, session_start=start, issued_us=int((now - (idle - 1) * 60) * 1_000_000))
    assert client.post("/api/v1/auth/refresh", headers=bearer(recent)).status_code == 200
    stale = _refresh_token(ana, session_start=start, issued_us=int((now - (idle + 1) * 60) * 1_000_000))
    assert client.post("/api/v1/auth/refresh", headers=bearer(stale)).status_code == 401


def test_api_logout_revokes_the_access_token_and_its_refresh_token(client, ana, probe):
    pair = api_pair(client)
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    assert client.get("/api/_probe", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 401


def test_api_logout_also_revokes_a_named_refresh_token(client, ana, make_user):
    one, two = api_pair(client), api_pair(client)
    make_user("bo@example.org")
    theirs = api_pair(client, "bo@example.org")
    bad = client.post("/api/v1/auth/logout", headers=bearer(one["access_token"]), json={"refresh_token": theirs["refresh_token"]})
    assert bad.status_code == 400
    assert client.post("/api/v1/auth/logout", headers=bearer(one["access_token"]), json={"refresh_token": "junk"}).status_code == 400
    assert client.post("/api/v1/auth/logout", headers=bearer(one["access_token"]), json={"refresh_token": 5}).status_code == 400
    ok = client.post("/api/v1/auth/logout", headers=bearer(one["access_token"]), json={"refresh_token": two["refresh_token"]})
    assert ok.status_code == 204
    assert client.post("/api/v1/auth/refresh", headers=bearer(two["refresh_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(theirs["refresh_token"])).status_code == 200


# --- one-time passwords on the API ----------------------------------------------------------

CHANGE_FIRST = "POST /api/v1/auth/password"
SOME_ID = "abcdefghijklmnopqrstuv"


@pytest.fixture
def one_time(make_user):
    """ana with a one-time password, as after ``nbpress portal users add`` or ``reset-password``."""
    user = make_user(EMAIL)
    user.must_change_password = True
    db.session.commit()
    return user


def change_by_api(client, access_token, current=TEST_PASSWORD, new=NEW_PASSWORD):
    return client.post("/api/v1/auth/password", headers=bearer(access_token), json={"current_password": current, "new_password": new})


def test_a_one_time_password_signs_in_on_the_api_but_reads_nothing_until_it_is_changed(client, one_time):
    first = api_pair(client)  # password and emailed code: the sign-in completes, the device is verified
    assert first["password_change_required"] is True
    pair = api_pair(client)  # the trusted device skips the code; the answer still says so
    assert pair["password_change_required"] is True and "device_token" not in pair
    for path in ("/api/v1/publications", f"/api/v1/publications/{SOME_ID}", f"/api/v1/publications/{SOME_ID}/download"):
        refused = client.get(path, headers=bearer(pair["access_token"]))
        assert refused.status_code == 403, path
        assert refused.get_json()["error"] == "password_change_required" and CHANGE_FIRST in refused.get_json()["message"]
    refused = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))  # no way round it by refreshing
    assert refused.status_code == 403 and refused.get_json()["error"] == "password_change_required"

    changed = change_by_api(client, pair["access_token"])
    assert changed.status_code == 200
    body = changed.get_json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "password_change_required"}
    assert body["password_change_required"] is False and body["token_type"] == "Bearer"
    assert client.get("/api/v1/publications", headers=bearer(body["access_token"])).status_code == 200
    assert client.post("/api/v1/auth/refresh", headers=bearer(body["refresh_token"])).status_code == 200
    # As any password change: earlier tokens end, the one-time password is gone.
    for token in (first, pair):
        assert client.get("/api/v1/publications", headers=bearer(token["access_token"])).status_code == 401
        assert client.post("/api/v1/auth/refresh", headers=bearer(token["refresh_token"])).status_code == 401
    assert client.post("/api/v1/auth/login", json={"email": EMAIL, "password": TEST_PASSWORD}).status_code == 401
    db.session.refresh(one_time)
    assert one_time.must_change_password is False
    assert [(row.outcome, row.detail.get("client")) for row in audit_rows("password.change")] == [("ok", "api")]


def test_every_bearer_operation_but_password_change_and_logout_refuses_a_one_time_password(app, client, one_time):
    """Walks the OpenAPI document, so an operation added later is held to the rule too."""
    pair = api_pair(client)
    document = build_document(app)
    allowed = {("post", "/api/v1/auth/password"), ("post", "/api/v1/auth/logout")}
    checked = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if op.get("security") != [{"bearer": []}] or (method, path) in allowed:
                continue
            token = pair["refresh_token"] if path.endswith("/auth/refresh") else pair["access_token"]
            response = client.open(re.sub(r"\{[^}]+\}", SOME_ID, path), method=method.upper(), headers=bearer(token))
            assert response.status_code == 403 and response.get_json()["error"] == "password_change_required", (method, path)
            assert "403" in op["responses"], f"{method} {path} does not document its 403"
            checked.append((method, path))
    assert len(checked) >= 4, checked  # list, metadata, download, refresh
    for method, path in allowed:
        assert document["paths"][path][method]["security"] == [{"bearer": []}]
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 204


@pytest.mark.parametrize(("body", "message"), [
    ({"current_password": "not my password at all", "new_password": NEW_PASSWORD}, "current password is not correct"),
    ({"current_password": TEST_PASSWORD, "new_password": "too short"}, "at least 12"),
    ({"current_password": TEST_PASSWORD, "new_password": "y" * 129}, "at most 128"),
    ({"current_password": TEST_PASSWORD, "new_password": EMAIL.upper()}, "too common"),
    ({"current_password": TEST_PASSWORD}, "new_password"),
    ({"current_password": TEST_PASSWORD, "new_password": 5}, "new_password"),
    ({"current_password": TEST_PASSWORD, "new_password": "lone surrogate \ud800 here"}, "new_password"),
])
def test_refused_api_password_changes_change_nothing(client, one_time, body, message):
    pair = api_pair(client)
    stored = one_time.password_hash
    response = client.post("/api/v1/auth/password", headers=bearer(pair["access_token"]), json=body)
    assert response.status_code == 400 and message in response.get_json()["message"]
    db.session.refresh(one_time)
    assert one_time.password_hash == stored and one_time.must_change_password is True
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 204  # the token still counted


def test_api_password_change_needs_an_access_token(client, ana):
    pair = api_pair(client)
    assert change_by_api(client, pair["refresh_token"]).status_code == 401
    assert client.post("/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}).status_code == 401
    changed = change_by_api(client, pair["access_token"])  # not only for one-time passwords
    assert changed.status_code == 200 and changed.get_json()["password_change_required"] is False


def test_api_password_change_is_rate_limited_per_ip_for_failures_with_a_valid_token(client, ana):
    """Each try runs Argon2 on the current password: a stolen access token cannot guess it at speed."""
    pair = api_pair(client)
    for _ in range(12):  # requests without a valid token stop at the 401 and count for nothing
        assert client.post("/api/v1/auth/password", json={"current_password": "x", "new_password": NEW_PASSWORD}).status_code == 401
    for _ in range(10):
        assert change_by_api(client, pair["access_token"], current="not my password at all").status_code == 400
    blocked = change_by_api(client, pair["access_token"])  # even the right password waits
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "too_many_requests"


def test_auth_endpoints_are_in_the_openapi_document(app):
    from openapi_spec_validator import validate

    document = build_document(app)
    validate(document)
    login_op = document["paths"]["/api/v1/auth/login"]["post"]
    assert login_op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/LoginIn"}
    assert {"200", "400", "401", "429"} <= set(login_op["responses"])
    assert document["paths"]["/api/v1/auth/refresh"]["post"]["security"] == [{"bearer": []}]
    assert document["paths"]["/api/v1/auth/logout"]["post"]["security"] == [{"bearer": []}]
    password_op = document["paths"]["/api/v1/auth/password"]["post"]
    assert password_op["security"] == [{"bearer": []}]
    assert password_op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PasswordIn"}
    assert password_op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TokensOut"}
    assert {"400", "401"} <= set(password_op["responses"])
    assert "password_change_required" in document["components"]["schemas"]["TokensOut"]["properties"]
    assert "password_change_required" in document["components"]["schemas"]["VerifiedOut"]["properties"]


# --- browser sign-out and refresh ---------------------------------------------------------


def test_logout_needs_csrf_and_then_revokes_both_cookies_tokens(client, ana, login, probe):
    login(client, EMAIL)
    access, refresh = cookie(client, "access_token_cookie"), cookie(client, "refresh_token_cookie")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "0f" * 16}).status_code == 403
    assert client.get("/api/_probe", headers=bearer(access)).status_code == 200  # refused posts changed nothing
    response = client.post("/logout", data={"csrf_token": cookie(client, "csrf_access_token")})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert cookie(client, "access_token_cookie") is None
    assert client.get("/api/_probe", headers=bearer(access)).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(refresh)).status_code == 401
    client.set_cookie("access_token_cookie", access)  # a copy kept by an attacker
    assert client.get("/account").status_code == 303
    assert [row.outcome for row in audit_rows("logout")] == ["ok"]


def test_logout_with_an_expired_access_cookie_still_revokes_the_refresh_token(app, client, ana, login):
    login(client, EMAIL)
    refresh = cookie(client, "refresh_token_cookie")
    payload = decode_token(cookie(client, "access_token_cookie"))
    expired = create_access_token(identity=ana.public_id, expires_delta=dt.timedelta(seconds=-1),
                                  additional_claims={"rjti": payload["rjti"], "rexp": payload["rexp"]})
    client.set_cookie("access_token_cookie", expired)
    assert client.post("/logout", data={"csrf_token": decode_token(expired, allow_expired=True)["csrf"]}).status_code == 303
    assert client.post("/api/v1/auth/refresh", headers=bearer(refresh)).status_code == 401


def test_a_page_refreshes_an_expired_access_cookie_through_the_refresh_hop(client, ana, login):
    login(client, EMAIL)
    old_refresh = cookie(client, "refresh_token_cookie")
    client.delete_cookie("access_token_cookie")
    hop = client.get("/account?x=1")
    assert hop.status_code == 303 and hop.headers["Location"] == "/auth/refresh?next=/account?x%3D1"
    back = client.get(hop.headers["Location"])
    assert back.status_code == 303 and back.headers["Location"] == "/account?x=1"
    assert {"access_token_cookie", "refresh_token_cookie"} <= set(set_cookie_headers(back))
    assert client.get("/account").status_code == 200
    assert client.post("/api/v1/auth/refresh", headers=bearer(old_refresh)).status_code == 401  # rotated


def test_without_a_refresh_cookie_a_page_goes_to_the_sign_in_form(client, ana):
    response = client.get("/account")
    assert response.status_code == 303 and response.headers["Location"] == "/login?next=/account"


def test_the_refresh_hop_sends_an_ended_session_to_sign_in(app, client, ana, login):
    login(client, EMAIL)
    ana.tokens_valid_after = utcnow() + dt.timedelta(seconds=1)  # as after a password change elsewhere
    db.session.commit()
    client.delete_cookie("access_token_cookie")
    response = client.get("/auth/refresh?next=//evil.com")
    assert response.status_code == 303 and response.headers["Location"] == "/login?next=/"
    assert cookie(client, "csrf_refresh_token") is None


def test_cookie_refresh_by_post_needs_the_refresh_csrf_value(client, ana, login):
    login(client, EMAIL)
    refresh = cookie(client, "refresh_token_cookie")
    assert client.post("/auth/refresh").status_code == 403
    assert client.post("/auth/refresh", headers={"X-CSRF-TOKEN": cookie(client, "csrf_access_token")}).status_code == 403
    assert client.post("/api/v1/auth/refresh", headers=bearer(refresh)).status_code == 200  # untouched so far
    login(client, EMAIL)
    response = client.post("/auth/refresh", headers={"X-CSRF-TOKEN": cookie(client, "csrf_refresh_token")})
    assert response.status_code == 204 and "access_token_cookie" in set_cookie_headers(response)


# --- account page -------------------------------------------------------------------------


def change(client, current=TEST_PASSWORD, new=NEW_PASSWORD, again=None, csrf="cookie"):
    token = cookie(client, "csrf_access_token") if csrf == "cookie" else csrf
    data = {"current_password": current, "new_password": new, "new_password_again": new if again is None else again, "next": "/account"}
    if token is not None:
        data["csrf_token"] = token
    return client.post("/account/password", data=data)


def test_account_page_shows_the_user(client, make_user, login):
    make_user(EMAIL)
    login(client, EMAIL)
    page = client.get("/account").get_data(as_text=True)
    assert EMAIL in page and ">ana<" in page and 'name="csrf_token"' in page and 'for="new-password"' in page


def test_password_change_revokes_earlier_tokens_and_keeps_this_browser_signed_in(app, client, ana, login, probe):
    before = api_pair(client)
    login(client, EMAIL)
    response = change(client)
    assert response.status_code == 303 and response.headers["Location"] == "/account?reason=password"
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and b"Your password has been changed" in page.data
    assert client.get("/api/_probe", headers=bearer(before["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(before["refresh_token"])).status_code == 401
    after = api_pair(client, password=NEW_PASSWORD)  # issued after the change, even in the same second
    assert client.get("/api/_probe", headers=bearer(after["access_token"])).status_code == 200
    assert client.post("/api/v1/auth/login", json={"email": EMAIL, "password": TEST_PASSWORD}).status_code == 401
    db.session.refresh(ana)
    assert ana.must_change_password is False
    assert [row.outcome for row in audit_rows("password.change")] == ["ok"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"current": "not my password at all"}, b"current password is not correct"),
    ({"again": "something else entirely"}, b"do not match"),
    ({"new": "too short"}, b"at least 12"),
    ({"new": "password1234"}, b"too common"),
    ({"new": EMAIL.upper()}, b"too common"),
])
def test_refused_password_changes_change_nothing(client, ana, login, probe, kwargs, message):
    token = api_pair(client)["access_token"]
    login(client, EMAIL)
    stored = ana.password_hash
    response = change(client, **kwargs)
    assert response.status_code == 400 and message in response.data
    db.session.refresh(ana)
    assert ana.password_hash == stored
    assert client.get("/api/_probe", headers=bearer(token)).status_code == 200
    assert [row.outcome for row in audit_rows("password.change")] == ["failed"]


@pytest.mark.parametrize("csrf", [None, "", "foreign"])
def test_password_change_without_the_right_csrf_value_is_refused(app, client, make_user, login, csrf):
    user = make_user(EMAIL)
    make_user("bo@example.org")
    other = app.test_client()
    login(other, "bo@example.org")
    login(client, EMAIL)
    stored = user.password_hash
    token = cookie(other, "csrf_access_token") if csrf == "foreign" else csrf
    response = change(client, csrf=token)
    assert response.status_code in (401, 403)
    db.session.refresh(user)
    assert user.password_hash == stored


def test_password_change_accepts_an_nfkc_equivalent(client, ana, login):
    login(client, EMAIL)
    assert change(client, new="ｆｕｌｌｗｉｄｔｈ ｐａｓｓ ９").status_code == 303
    assert api_sign_in(client, EMAIL, "fullwidth pass 9")["access_token"]


def test_an_expired_form_post_returns_to_the_form_page(client, ana, login):
    login(client, EMAIL)
    client.delete_cookie("access_token_cookie")
    response = change(client)
    assert response.status_code == 303 and response.headers["Location"] == "/auth/refresh?next=/account"


def test_audit_rows_carry_no_secrets(client, ana, login):
    login(client, EMAIL, "wrong password here")
    login(client, EMAIL)
    change(client, current="wrong password here")
    change(client)
    text = " ".join(str(row.detail) for row in db.session.scalars(sa.select(AuditEvent)))
    for secret in (TEST_PASSWORD, NEW_PASSWORD, "wrong password here"):
        assert secret not in text
    assert {row.event for row in db.session.scalars(sa.select(AuditEvent))} >= {"login.password", "password.change"}


def test_unknown_user_and_wrong_password_take_the_same_time(tmp_path, database_url):
    """With production-cost Argon2 (19 MiB, t=2), an unknown email is not answered faster than
    a wrong password: both run one hash (the dummy one for unknown users). Medians of
    interleaved tries; skipping the dummy hash makes the unknown path ~10x faster."""
    config = base_config(DATABASE_URL=database_url, ARGON2_MEMORY_KIB=19456, ARGON2_TIME_COST=2)
    app = create_app(config, instance_path=tmp_path / "timing")
    with app.app_context():
        if not database_url:
            upgrade()
        hasher = Passwords.from_settings(app.config["NBPRESS"])
        db.session.add(User(email=EMAIL, display_name="ana", password_hash=hasher.hash(TEST_PASSWORD)))
        db.session.commit()
        client = app.test_client()

        def seconds(email: str, n: int) -> float:
            # A new address per try: the per-IP limit is not what is measured here.
            started = time.perf_counter()
            response = client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password here"},
                                   environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
            elapsed = time.perf_counter() - started
            assert response.status_code == 401
            return elapsed

        seconds("nobody@example.org", 1), seconds(EMAIL, 1)  # warm-up: the dummy hash is made on first use
        unknown, known = [], []
        for n in range(2, 10):  # 9 failures in all: under the per-account brake's free 10
            unknown.append(seconds("nobody@example.org", n))
            known.append(seconds(EMAIL, n))
        db.session.remove()
        db.engine.dispose()
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.67 < ratio < 1.5, f"unknown/known median time ratio {ratio:.2f}"
