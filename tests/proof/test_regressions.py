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
    csrf = client.get_cookie("login_csrf").value
    response = client.post("/login", data={"email": "gina@example.com\x00", "password": TEST_PASSWORD, "login_csrf": csrf})
    assert response.status_code == 401, response.status_code


def test_a_full_disk_is_507_storage_full_and_stores_nothing(app, client, monkeypatch, proof):
    proof.case("regressions", "ENOSPC while storing an upload", "a full disk was a 500; now 507 storage_full, no row, no file")
    import errno

    from tests.portal.test_publishing import metadata_for, new_publisher_token, post_publication, publication_count, stored_files
    from tests.portal.conftest import make_pdf

    token = new_publisher_token()
    real_replace = __import__("os").replace

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("publish_server.storage.os.replace", full)  # fails after the temporary file was written
    pdf = make_pdf(marker="full")
    response = post_publication(client, token, pdf, metadata_for(pdf))
    assert response.status_code == 507 and response.get_json()["error"] == "storage_full"
    assert stored_files(app) == [] and publication_count() == 0
    monkeypatch.setattr("publish_server.storage.os.replace", real_replace)
    assert post_publication(client, token, pdf, metadata_for(pdf)).status_code == 201  # and a retry works


def test_an_unreachable_database_is_503_try_again_not_500(tmp_path, proof):
    proof.case("regressions", "database unreachable", "a lost database was a 500; now 503 with Retry-After (clients and the toolkit retry)")
    from publish_server import create_app
    from tests.portal.conftest import base_config

    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path}/missing-folder/portal.sqlite3"), instance_path=tmp_path / "instance")
    response = app.test_client().post("/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"
    assert int(response.headers["Retry-After"]) > 0  # (the limiter on this route sets its own value)


def test_an_unknown_query_parameter_is_refused(app, client, make_user, api_token, proof):
    proof.case("regressions", "unknown query parameter on GET /api/v1/publications",
               "found by schemathesis (full profile): unknown parameters were ignored (200); now 400 naming one")
    make_user("hana@example.com")
    headers = {"Authorization": f"Bearer {api_token(client, 'hana@example.com')}"}
    response = client.get("/api/v1/publications", query_string={"limt": "5"}, headers=headers)
    assert response.status_code == 400 and "limt" in response.get_json()["message"]
    assert client.get("/api/v1/publications", query_string={"limit": "5"}, headers=headers).status_code == 200


def test_a_nul_in_the_user_agent_is_stored_without_it(app, client, make_user, proof):
    proof.case("regressions", "NUL in the User-Agent of a sign-in", "found writing the ASVS table: a 500 on PostgreSQL; now the "
               "sign-in goes on and the device keeps the agent without control characters")
    from publish_server.extensions import db
    from publish_server.models import LoginChallenge

    make_user("hana@example.com")
    response = client.post("/api/v1/auth/login", json={"email": "hana@example.com", "password": TEST_PASSWORD},
                           headers={"User-Agent": "curl/8\x00\x01X-Evil: 1"})
    assert response.status_code == 202, response.get_data(as_text=True)
    agent = db.session.scalars(db.select(LoginChallenge.user_agent)).one()
    assert agent == "curl/8 X-Evil: 1"


def test_a_nul_in_a_device_name_is_400(app, client, make_user, login, proof):
    proof.case("regressions", "NUL in a device's new name", "found writing the ASVS table: a 500 on PostgreSQL; now 400, the name unchanged")
    from publish_server.extensions import db
    from publish_server.models import Device

    make_user("ines@example.com")
    login(client, "ines@example.com")
    device = db.session.scalars(db.select(Device)).one()
    page = client.get("/account/devices")
    csrf = client.get_cookie("csrf_access_token").value
    response = client.post(f"/account/devices/{device.public_id}/rename", data={"name": "laptop\x00", "csrf_token": csrf})
    assert response.status_code == 400, response.status_code
    db.session.expire_all()
    assert db.session.get(Device, device.id).name != "laptop\x00" and page.status_code == 200


def test_a_line_break_in_a_path_cannot_forge_a_log_line(app, client, caplog, proof):
    proof.case("regressions", "%0A in the path of a request that fails", "found writing the ASVS table: the path went into the "
               "error log raw, so a URL could add a fake line; now it is logged quoted")
    from flask import request

    @app.before_request
    def boom():
        if request.path.startswith("/boom"):
            raise RuntimeError("boom")

    response = client.get("/boom/x%0A2026-12-01 INFO forged line")
    assert response.status_code == 500
    logged = [r.getMessage() for r in caplog.records if "unhandled error" in r.getMessage()]
    assert logged and all("\n" not in line for line in logged), logged
