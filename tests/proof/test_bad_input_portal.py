"""Bad input, table-driven, where it enters the portal: uploads to POST /api/v1/publications,
form and JSON fields, cookies and tokens. Every row runs on SQLite and PostgreSQL against the
seeded portal (:mod:`tests.proof.seed`).

Each row: the input, the clear error expected (status and public error code), and then the proof
that nothing was lost or half-written (:func:`assert_intact`): the three seed publications are
still listed to their readers and download with the same SHA-256, there are no other
publications, no temporary upload files, and no code was emailed where none should be.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, decode_token

from publish_server.extensions import db
from publish_server.models import Publication, User
from tests.deadline import deadline
from tests.portal.conftest import TEST_PASSWORD, api_sign_in, make_pdf
from tests.portal.test_publishing import metadata_for, post_publication

API = "/api/v1/publications"
DEEP = "[" * 5000 + "]" * 5000  # 10 KB: Python's json recursed once per level (RecursionError, a 500)


def _sent(app) -> int:
    return len(app.extensions["nbpress.mailer"].sent) if "nbpress.mailer" in app.extensions else 0


def assert_intact(app, client, seed) -> None:
    """The seed's publications are all there, readable by their readers, byte for byte."""
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Publication)) == len(seed.publications)
    for reader in ("alice", "bob"):
        token = api_sign_in(client, seed.email(reader))["access_token"]  # a trusted device: no new code
        headers = {"Authorization": f"Bearer {token}"}
        listed = {p["id"]: p["sha256"] for p in client.get(API, headers=headers).get_json()["publications"]}
        expected = seed.readable_by(reader)
        assert set(listed) == {p.public_id for p in expected}
        for publication in expected:
            assert listed[publication.public_id] == publication.sha256
            body = client.get(f"{API}/{publication.public_id}/download", headers=headers).get_data()
            assert hashlib.sha256(body).hexdigest() == publication.sha256
    files = Path(app.config["FILES_DIR"])
    assert not [p for p in files.rglob("*") if p.is_file() and not p.name.endswith(".pdf")], "temporary upload files left"
    assert len([p for p in files.rglob("*.pdf")]) == len(seed.publications)


# --- uploads -------------------------------------------------------------------------------------


def _padded_pdf(size: int) -> bytes:
    pdf = make_pdf()
    head, tail = pdf[:-6], pdf[-6:]
    return head + b"%" + b"x" * (size - len(pdf) - 2) + b"\n" + tail


@dataclass(frozen=True)
class Upload:
    case: str
    status: int
    error: str
    proves: str
    pdf: Callable[[], bytes | None] = lambda: make_pdf(marker="new")
    metadata: Callable[[bytes, Any], dict | str | None] = lambda pdf, seed: metadata_for(pdf, run_id="new-run")
    token: Callable[[Any], str | None] = lambda seed: seed.publisher_token
    cap_mib: int | None = None
    metadata_as_file: bool = False  # curl -F metadata=@meta.json


UPLOADS = [
    Upload("not a PDF", 415, "unsupported_media_type", "only PDFs are stored (magic bytes)", pdf=lambda: b"hello, this is text\n"),
    Upload("a PNG named report.pdf", 415, "unsupported_media_type", "the name and type sent do not matter, the bytes do",
           pdf=lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    Upload("truncated PDF with a matching checksum", 415, "unsupported_media_type", "half a PDF is refused even when its checksum matches",
           pdf=lambda: make_pdf(marker="half")[:300]),
    Upload("wrong checksum", 422, "checksum_mismatch", "a corrupted transfer is caught and nothing is stored",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", sha256="0" * 64)),
    Upload("0 bytes", 400, "bad_request", "an empty file is refused", pdf=lambda: b""),
    Upload("no file part", 400, "bad_request", "a publication needs its PDF", pdf=lambda: None),
    Upload("over the size cap", 413, "too_large", "the cap holds and no temporary file is left",
           pdf=lambda: _padded_pdf(1024 * 1024 + 1), cap_mib=1),
    Upload("body over the request limit", 413, "too_large", "an oversized body is refused before it is read",
           pdf=lambda: _padded_pdf(3 * 1024 * 1024), cap_mib=1),
    Upload("metadata not JSON", 400, "bad_request", "malformed metadata is a 400 naming it", metadata=lambda pdf, seed: "{not json"),
    Upload("metadata in invalid UTF-8", 400, "bad_request", "undecodable metadata is a 400, not a 500",
           metadata=lambda pdf, seed: b'{"report": "\xff\xfe"}'.decode("latin-1")),
    Upload("metadata of wrong types", 400, "bad_request", "field types are checked",
           metadata=lambda pdf, seed: {**metadata_for(pdf, run_id="new-run"), "pages": "two"}),
    Upload("metadata with CR/LF in a label", 400, "bad_request", "control characters cannot reach pages, mails or logs",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", period_label="W47\r\nX-Injected: 1")),
    Upload("metadata with NUL in the title", 400, "bad_request", "NUL is refused before PostgreSQL sees it",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", title="Weekly\x00")),
    Upload("metadata with a 100,000-character title", 400, "bad_request", "very long strings are refused with a clear 400",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", title="T" * 100_000)),
    Upload("metadata nested 5,000 deep", 400, "bad_request", "nesting is capped (32) before the JSON is parsed: a 400, not a 500",
           metadata=lambda pdf, seed: DEEP),
    Upload("a parameter nested 5,000 deep", 400, "bad_request", "the cap holds inside an otherwise valid metadata object",
           metadata=lambda pdf, seed: json.dumps(metadata_for(pdf, run_id="new-run", parameters={"x": 0})).replace('{"x": 0}', f'{{"x": {DEEP}}}')),
    Upload("metadata with a 5,000-digit number", 400, "bad_request", "a number Python will not convert is a 400, not a 500",
           metadata=lambda pdf, seed: json.dumps(metadata_for(pdf, run_id="new-run")).replace('"pages": 1', '"pages": ' + "1" * 5000)),
    Upload("parameter value of 64,000 characters", 400, "bad_request", "parameter values are capped (4,096 characters): no 3 s publish",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", parameters={"dsn": "a" * 64_000})),
    Upload("1 MB parameter value", 400, "bad_request", "the metadata's 256 KiB cap refuses it unread (the old masking ran ~800 s on it)",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", parameters={"dsn": "a://u:" * 170_000}), metadata_as_file=True),
    Upload("1 MB parameter value in a form field", 413, "too_large", "Werkzeug refuses a form field over 500,000 bytes while reading it",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", parameters={"dsn": "a://u:" * 170_000})),
    Upload("report slug walking out", 400, "bad_request", "a report slug is a name, never a path",
           metadata=lambda pdf, seed: metadata_for(pdf, report="../../etc", run_id="new-run")),
    Upload("audience with a look-alike email", 400, "bad_request", "a Cyrillic look-alike of a user is an unknown user, not that user",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="new-run", audience={"users": ["\u0430lice@example.com"]})),
    Upload("same run, other bytes", 409, "conflict", "a published run cannot be replaced; the original stays byte for byte",
           metadata=lambda pdf, seed: metadata_for(pdf, run_id="r47")),
    Upload("revoked publisher token", 401, "unauthorized", "a revoked token publishes nothing", token=lambda seed: seed.revoked_token),
    Upload("recipient token as publisher token", 401, "unauthorized", "a recipient cannot publish", token=lambda seed: seed.access("alice")),
]


@pytest.mark.parametrize("row", UPLOADS, ids=[r.case for r in UPLOADS])
def test_uploads(app, client, seeded, row, proof):
    proof.case("uploads", row.case, f"{row.status} {row.error}: {row.proves}; earlier publications intact")
    if row.cap_mib:
        app.config["NBPRESS"] = {**app.config["NBPRESS"], "MAX_UPLOAD_MB": row.cap_mib}
        app.config["MAX_CONTENT_LENGTH"] = (row.cap_mib + 1) * 1024 * 1024  # as create_app sets it
    pdf = row.pdf()
    metadata = row.metadata(pdf if pdf is not None else b"", seeded)
    with deadline():  # refused promptly: a check that is not linear in the input would overrun
        response = post_publication(client, row.token(seeded), pdf, metadata, metadata_as_file=row.metadata_as_file)
    assert response.status_code == row.status, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"] == row.error
    assert_intact(app, client, seeded)


# --- form and JSON fields --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    case: str
    method: str
    path: str
    status: int
    proves: str
    json: Any = None
    data: bytes | None = None
    content_type: str | None = None
    query: dict | None = None
    auth: str | None = None  # "alice": send her access token; "publisher": the seed's publisher token
    error: str | None = None
    mails: int = 0  # codes emailed by this request


LOGIN = "/api/v1/auth/login"
REPORTS, RUNS = "/api/v1/reports", "/api/v1/run-requests"
FIELDS = [
    Field("email of the wrong type", "POST", LOGIN, 400, "types are checked (StrictStr)", json={"email": 42, "password": TEST_PASSWORD}),
    Field("password as a list", "POST", LOGIN, 400, "types are checked", json={"email": "alice@example.com", "password": [TEST_PASSWORD]}),
    Field("email of 10,000 characters", "POST", LOGIN, 400, "sizes are checked before any lookup", json={"email": "a" * 10_000, "password": "x"}),
    Field("password of 5,000 characters", "POST", LOGIN, 400, "over-long passwords are refused before hashing", json={"email": "alice@example.com", "password": "p" * 5000}),
    Field("email with CR/LF", "POST", LOGIN, 401, "a header-injection attempt is a failed sign-in; no mail goes anywhere",
          json={"email": "alice@example.com\r\nBcc: evil@example.net", "password": TEST_PASSWORD}, error="invalid_credentials"),
    Field("email with NUL", "POST", LOGIN, 401, "NUL is a failed sign-in on both databases", json={"email": "alice@example.com\x00", "password": TEST_PASSWORD},
          error="invalid_credentials"),
    Field("Cyrillic look-alike email", "POST", LOGIN, 401, "a look-alike address is another (unknown) account, even with alice's password",
          json={"email": "\u0430lice@example.com", "password": TEST_PASSWORD}, error="invalid_credentials"),
    Field("full-width look-alike email", "POST", LOGIN, 401, "full-width letters are not folded into alice's address",
          json={"email": "\uff41lice@example.com", "password": TEST_PASSWORD}, error="invalid_credentials"),
    Field("body in invalid UTF-8", "POST", LOGIN, 400, "undecodable JSON is a 400", data=b'{"email": "\xff\xfe", "password": "x"}', content_type="application/json"),
    Field("body that is not JSON", "POST", LOGIN, 400, "a form body on a JSON endpoint is a 400", data=b"email=alice&password=x", content_type="application/x-www-form-urlencoded"),
    Field("JSON array instead of object", "POST", LOGIN, 400, "the body must be an object", json=[1, 2, 3]),
    *[Field(f"{name}: JSON nested 5,000 deep", "POST", f"/api/v1/auth/{name}", 400,
            "nesting is capped (32) before the body is parsed: a 400, not a 500 with a traceback",
            data=DEEP.encode(), content_type="application/json", error="bad_request")
      for name in ("login", "verify", "resend")],
    Field("JSON body over 64 KiB", "POST", LOGIN, 400, "JSON bodies are capped before they are parsed",
          data=b'{"email": "alice@example.com", "password": "x"}' + b" " * 65_536, content_type="application/json", error="bad_request"),
    Field("list limit not a number", "GET", API, 400, "query types are checked", query={"limit": "ten"}, auth="alice"),
    Field("list limit out of range", "GET", API, 400, "query ranges are checked", query={"limit": "100000"}, auth="alice"),
    Field("search of 1,000 characters", "GET", API, 400, "search terms are size-capped", query={"q": "w" * 1000}, auth="alice"),
    Field("search with CR/LF", "GET", API, 400, "control characters in a search are refused", query={"q": "a\r\nb"}, auth="alice"),
    Field("report filter with NUL", "GET", API, 400, "NUL in a filter is refused before PostgreSQL sees it", query={"report": "weekly\x00"}, auth="alice"),
    Field("unknown query parameter", "GET", API, 400, "a typo such as limt=5 is refused, not silently ignored (found by schemathesis)",
          query={"limt": "5"}, auth="alice"),
    Field("search with LIKE wildcards", "GET", API, 200, "% and _ are searched literally, not as wildcards", query={"q": "%_%"}, auth="alice"),
    # Runs from the portal: the worker's endpoints (publisher token).
    Field("profile nested 5,000 deep", "PUT", f"{REPORTS}/weekly_statistics/profile", 400, "the nesting cap holds on the profile's larger body cap",
          data=DEEP.encode(), content_type="application/json", auth="publisher", error="bad_request"),
    Field("profile body over 1 MiB", "PUT", f"{REPORTS}/weekly_statistics/profile", 400, "a profile is capped before it is parsed",
          data=b'{"parameters": []}' + b" " * (1024 * 1024), content_type="application/json", auth="publisher", error="bad_request"),
    Field("profile with an unknown key", "PUT", f"{REPORTS}/weekly_statistics/profile", 400, "profile bodies are strict: a typo is refused",
          json={"parameters": [], "schedul": {}}, auth="publisher", error="bad_request"),
    Field("profile parameter named like code", "PUT", f"{REPORTS}/weekly_statistics/profile", 400, "parameter names are identifiers",
          json={"parameters": [{"name": "__import__('os')", "type": {"kind": "str"}}]}, auth="publisher", error="bad_request"),
    Field("profile label with NUL", "PUT", f"{REPORTS}/weekly_statistics/profile", 400, "NUL never reaches PostgreSQL or a page",
          json={"parameters": [{"name": "week", "label": "a\x00b", "type": {"kind": "str"}}]}, auth="publisher", error="bad_request"),
    Field("profile with 5,000 choices", "PUT", f"{REPORTS}/weekly_statistics/profile", 400, "choices are capped (100)",
          json={"parameters": [{"name": "x", "type": {"kind": "literal", "choices": list(range(5000))}}]}, auth="publisher", error="bad_request"),
    Field("profile slug with NUL", "PUT", f"{REPORTS}/weekly%00/profile", 404, "a slug of the wrong shape is not looked up",
          json={"parameters": []}, auth="publisher", error="not_found"),
    Field("run record with a 501-character error line", "POST", f"{REPORTS}/weekly_statistics/runs", 400, "error lines are capped",
          json={"run_id": "r1", "status": "failed", "trigger": "manual", "started_at": "2026-12-02T06:00:00Z", "error_line": "e" * 501},
          auth="publisher", error="bad_request"),
    Field("run record started 'yesterday'", "POST", f"{REPORTS}/weekly_statistics/runs", 400, "times are ISO 8601",
          json={"run_id": "r1", "status": "failed", "trigger": "manual", "started_at": "yesterday"}, auth="publisher", error="bad_request"),
    Field("notebook that is not HTML", "PUT", f"{REPORTS}/weekly_statistics/runs/r1/notebook", 415, "the notebook is text/html only",
          data=b"%PDF-1.7", content_type="application/pdf", auth="publisher", error="unsupported_media_type"),
    Field("claim by a worker named with CR/LF", "POST", f"{RUNS}/claim", 400, "worker names cannot reach logs as more than text",
          json={"worker": "host:1\r\nX-Injected: 1"}, auth="publisher", error="bad_request"),
    Field("claim by a 65-character worker", "POST", f"{RUNS}/claim", 400, "worker names are capped (64)", json={"worker": "w" * 65},
          auth="publisher", error="bad_request"),
    Field("claim filtered by a path", "POST", f"{RUNS}/claim", 400, "report filters are slugs", json={"worker": "w:1", "reports": ["../x"]},
          auth="publisher", error="bad_request"),
    Field("claim with a recipient's token", "POST", f"{RUNS}/claim", 401, "a user's JWT takes no run request", json={"worker": "w:1"},
          auth="alice", error="unauthorized"),
    Field("progress of an unknown request", "POST", f"{RUNS}/nosuchrequest/progress", 404, "an unknown id is a 404",
          json={"worker": "w:1", "stage": "execute"}, auth="publisher", error="not_found"),
    Field("finish with a made-up status", "POST", f"{RUNS}/nosuchrequest/finish", 400, "statuses are a closed list (checked before the id)",
          json={"worker": "w:1", "status": "exploded"}, auth="publisher", error="bad_request"),
    Field("finish with transient as text", "POST", f"{RUNS}/nosuchrequest/finish", 400, "bodies are strict: 'yes' is not true",
          json={"worker": "w:1", "status": "failed", "transient": "yes"}, auth="publisher", error="bad_request"),
]


@pytest.mark.parametrize("row", FIELDS, ids=[r.case for r in FIELDS])
def test_form_and_json_fields(app, client, seeded, row, proof):
    proof.case("form and JSON fields", row.case, f"{row.status}: {row.proves}; earlier publications intact")
    mails_before = _sent(app)
    token = seeded.publisher_token if row.auth == "publisher" else seeded.access(row.auth) if row.auth else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if row.json is not None:
        response = client.open(row.path, method=row.method, json=row.json, headers=headers)
    else:
        response = client.open(row.path, method=row.method, data=row.data, content_type=row.content_type,
                               query_string=row.query, headers=headers)
    assert response.status_code == row.status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    if row.error:
        assert body["error"] == row.error
    if row.case == "search with LIKE wildcards":
        assert body["publications"] == []  # nothing matches a literal "%_%"
    assert _sent(app) - mails_before == row.mails
    assert_intact(app, client, seeded)


# --- cookies and tokens --------------------------------------------------------------------------


def _alice_payload(seed) -> dict:
    return decode_token(seed.access("alice"))


def _tampered(seed) -> str:
    token = seed.access("alice")
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


def _expired(seed) -> str:
    alice = db.session.scalars(sa.select(User).where(User.email == "alice@example.com")).one()
    return create_access_token(identity=alice.public_id, expires_delta=dt.timedelta(seconds=-60))


def _foreign(seed) -> str:
    """alice's claims, signed by another portal's key."""
    return pyjwt.encode(_alice_payload(seed), "another portal's secret, 32 chars or more", algorithm="HS256")


def _wrong_audience(app):
    def make(seed) -> str:
        claims = {**_alice_payload(seed), "aud": "someone-else"}
        return pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    return make


def _alg_none(seed) -> str:
    return pyjwt.encode(_alice_payload(seed), None, algorithm="none")


def _logged_out(client):
    def make(seed) -> str:
        token = api_sign_in(client, seed.email("alice"))["access_token"]
        assert client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
        return token
    return make


@dataclass(frozen=True)
class TokenRow:
    case: str
    make: str  # name of a maker above
    proves: str


TOKENS = [
    TokenRow("tampered signature", "tampered", "a changed byte in the signature is refused"),
    TokenRow("expired access token", "expired", "exp is enforced"),
    TokenRow("token signed by another key", "foreign", "a token from another portal (same claims) is refused"),
    TokenRow("token for another audience", "audience", "aud is checked even when the signature is right"),
    TokenRow("alg=none token", "none", "unsigned tokens are refused (HS256 pinned)"),
    TokenRow("refresh token as access token", "refresh", "token types are not interchangeable"),
    TokenRow("access token after logout", "logged_out", "logout revokes the token at once (deny-list)"),
    TokenRow("publisher token as access token", "publisher", "a publisher token reads nothing"),
]


@pytest.mark.parametrize("row", TOKENS, ids=[r.case for r in TOKENS])
def test_tokens(app, client, seeded, row, proof):
    proof.case("cookies and tokens", f"API: {row.case}", f"401 on list, metadata and download: {row.proves}")
    makers = {"tampered": _tampered, "expired": _expired, "foreign": _foreign, "audience": _wrong_audience(app),
              "none": _alg_none, "refresh": lambda s: s.sessions["alice"]["refresh_token"], "logged_out": _logged_out(client),
              "publisher": lambda s: s.publisher_token}
    headers = {"Authorization": f"Bearer {makers[row.make](seeded)}"}
    mine = seeded.publications["w47"].public_id
    for path in (API, f"{API}/{mine}", f"{API}/{mine}/download"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.status_code)
        assert response.get_json()["error"] == "unauthorized" and b"%PDF" not in response.get_data()
    assert_intact(app, client, seeded)


def test_a_one_time_password_reads_nothing_on_the_api(app, client, seeded, proof):
    proof.case("cookies and tokens", "API: one-time password (must be changed)",
               "signing in completes, but list, metadata, download and refresh answer 403 password_change_required "
               "until POST /api/v1/auth/password replaces it")
    carol = db.session.scalars(sa.select(User).where(User.email == "carol@example.com")).one()  # admin: may read everything
    carol.must_change_password = True  # as after `nbpress portal users reset-password`
    db.session.commit()
    pair = api_sign_in(client, seeded.email("carol"))
    assert pair["password_change_required"] is True
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    mine = seeded.publications["w47"].public_id
    for path in (API, f"{API}/{mine}", f"{API}/{mine}/download"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403 and b"%PDF" not in response.get_data(), path
        assert response.get_json()["error"] == "password_change_required" and "POST /api/v1/auth/password" in response.get_json()["message"]
    refreshed = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {pair['refresh_token']}"})
    assert refreshed.status_code == 403 and refreshed.get_json()["error"] == "password_change_required"
    assert_intact(app, client, seeded)


def _web_sign_in_form(client, email: str) -> Any:
    client.get("/login")
    csrf = client.get_cookie("login_csrf").value
    return client.post("/login", data={"email": email, "password": TEST_PASSWORD, "login_csrf": csrf})


def _tamper(value: str) -> str:
    return value[:-3] + ("xyz" if not value.endswith("xyz") else "abc")


def test_tampered_session_cookies_send_the_browser_to_sign_in(app, client, seeded, login, proof):
    proof.case("cookies and tokens", "browser: tampered access and refresh cookies",
               "a page with forged session cookies shows nothing and ends at the sign-in form")
    assert login(client, "alice@example.com").status_code == 303
    client.set_cookie("access_token_cookie", _tamper(client.get_cookie("access_token_cookie").value))
    refresh = client.get_cookie("refresh_token_cookie")
    client.set_cookie("refresh_token_cookie", _tamper(refresh.value))
    response = client.get(f"/p/{seeded.publications['w47'].public_id}/download")
    assert response.status_code == 303 and b"%PDF" not in response.get_data()
    hop = client.get(response.headers["Location"])  # the refresh hop refuses the forged refresh cookie
    assert hop.status_code == 303 and hop.headers["Location"].startswith("/login")
    assert client.get_cookie("access_token_cookie") is None
    assert_intact(app, client, seeded)


def test_a_forged_device_cookie_still_needs_the_emailed_code(app, client, seeded, proof):
    proof.case("cookies and tokens", "browser: forged device cookie", "a made-up device cookie is an unknown device: the code is still required")
    client.set_cookie("nbpress_device", "f" * 43)
    before = _sent(app)
    response = _web_sign_in_form(client, "alice@example.com")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/verify")
    assert client.get_cookie("access_token_cookie") is None and _sent(app) == before + 1
    assert_intact(app, client, seeded)


def test_another_users_device_token_does_not_skip_the_code(app, client, seeded, proof):
    proof.case("cookies and tokens", "API: another user's device token", "bob's trusted device token does not let alice skip her code")
    response = client.post(LOGIN, json={"email": "alice@example.com", "password": TEST_PASSWORD,
                                        "device_token": seeded.sessions["bob"]["device_token"]})
    assert response.status_code == 202 and "access_token" not in response.get_json()
    assert_intact(app, client, seeded)


def test_a_tampered_client_secret_ends_nothing_but_that_attempt(app, client, seeded, proof):
    proof.case("cookies and tokens", "API: tampered challenge client_secret, full-width code",
               "a look-alike code (full-width digits) and a wrong binding secret are refused; the right ones still finish the sign-in")
    from tests.portal.conftest import last_code

    started = client.post(LOGIN, json={"email": "alice@example.com", "password": TEST_PASSWORD}).get_json()
    code = last_code(app, "alice@example.com")
    wide = "".join(chr(0xFF10 + int(d)) for d in code)  # the same code in full-width digits
    refused = client.post("/api/v1/auth/verify", json={**{k: started[k] for k in ("challenge_id", "client_secret")}, "code": wide})
    assert refused.status_code == 400 and refused.get_json()["error"] == "code_malformed"
    bad = client.post("/api/v1/auth/verify", json={"challenge_id": started["challenge_id"], "client_secret": started["client_secret"][:-2] + "zz", "code": code})
    assert bad.status_code == 401 and bad.get_json()["error"] == "challenge_ended"
    good = client.post("/api/v1/auth/verify", json={**{k: started[k] for k in ("challenge_id", "client_secret")}, "code": code})
    assert good.status_code == 200 and good.get_json()["access_token"]
    assert_intact(app, client, seeded)
