"""Regression tests for the bugs the proof suite found (each one failed before its fix).

Every test runs on SQLite and on PostgreSQL: PostgreSQL refuses NUL in text, which is how
schemathesis found the first of them (a 500 instead of a clean 401 on /api/v1/auth/resend).
"""

from __future__ import annotations

import pytest

from tests.portal.conftest import TEST_PASSWORD

NUL_ID = "abc\x00def"


@pytest.mark.parametrize("endpoint", ["/api/v1/auth/verify", "/api/v1/auth/resend"])
def test_a_nul_in_a_challenge_id_ends_the_sign_in_instead_of_a_500(client, endpoint, proof):
    proof.case("regressions", f"NUL in challenge_id on {endpoint}", "found by schemathesis on PostgreSQL: a 500; now 401 challenge_ended")
    body = {"challenge_id": NUL_ID, "client_secret": "x" * 40, "code": "12345678"}
    if endpoint.endswith("resend"):
        body.pop("code")
    response = client.post(endpoint, json=body)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "challenge_ended"


def test_a_nul_in_the_email_is_a_plain_failed_sign_in(client, make_user, proof):
    proof.case("regressions", "NUL in the email of POST /api/v1/auth/login", "a wrong email with NUL is 401 like any other, never a 500")
    make_user("erin@example.com")
    response = client.post("/api/v1/auth/login", json={"email": "erin@example.com\x00", "password": TEST_PASSWORD})
    assert response.status_code == 401, response.get_data(as_text=True)


def test_a_nul_in_the_device_token_is_an_unknown_device(client, make_user, proof):
    proof.case("regressions", "NUL in device_token of POST /api/v1/auth/login", "a device token with NUL is an unknown device (a code is sent), never a 500")
    make_user("frank@example.com")
    response = client.post("/api/v1/auth/login", json={"email": "frank@example.com", "password": TEST_PASSWORD,
                                                       "device_token": "a" * 30 + "\x00"})
    assert response.status_code == 202, response.get_data(as_text=True)


def test_a_nul_in_the_sign_in_form_is_a_plain_failed_sign_in(client, make_user, proof):
    proof.case("regressions", "NUL in the email of the sign-in form", "the form answers 401 with its page, never a 500")
    make_user("gina@example.com")
    client.get("/login")
    csrf = client.get_cookie("login_csrf", path="/login").value
    response = client.post("/login", data={"email": "gina@example.com\x00", "password": TEST_PASSWORD, "login_csrf": csrf})
    assert response.status_code == 401, response.status_code
