"""The recipients' API (list, metadata, download) and the OpenAPI document.

Access tokens come from the real POST /api/v1/auth/login (the ``api_token`` fixture). Every
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from publish_server.extensions import db
from publish_server.models import AuditEvent, Publication
from publish_server.openapi import build_document
from tests.portal.conftest import api_sign_in, make_pdf
from tests.portal.test_publishing import metadata_for, new_publisher_token, post_publication, publish_ok

API = "/api/v1/publications"


@pytest.fixture
def world(app, client, make_user, api_token):
    """alice (group finance) reads two weekly versions; bob reads one monthly; carol nothing."""
    make_user("alice@example.com", groups=("finance",))
    make_user("bob@example.com")
    make_user("carol@example.com")
    publisher = new_publisher_token()
    pdfs = {name: make_pdf(pages=2, marker=name) for name in ("w46", "w47", "m11")}
    published = {
        "w46": publish_ok(client, publisher, pdfs["w46"], run_id="r46", period_label="2026-W46", audience={"groups": ["finance"]}),
        "w47": publish_ok(client, publisher, pdfs["w47"], run_id="r47", period_label="2026-W47", audience={"groups": ["finance"]}),
        "m11": publish_ok(client, publisher, pdfs["m11"], report="monthly", run_id="r11", period_label="2026-11",
                          title="Monthly Figures", audience={"users": ["bob@example.com"]}),
    }
    tokens = {name: api_token(client, f"{name}@example.com") for name in ("alice", "bob", "carol")}
    return {"pdfs": pdfs, "published": published, "tokens": tokens, "publisher": publisher}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- list and metadata -----------------------------------------------------------------------


def test_the_list_shows_only_granted_publications_newest_first(client, world):
    alice = client.get(API, headers=bearer(world["tokens"]["alice"])).get_json()
    assert [p["id"] for p in alice["publications"]] == [world["published"]["w47"]["id"], world["published"]["w46"]["id"]]
    assert alice["truncated"] is False
    bob = client.get(API, headers=bearer(world["tokens"]["bob"])).get_json()
    assert [p["report"] for p in bob["publications"]] == ["monthly"]
    carol = client.get(API, headers=bearer(world["tokens"]["carol"])).get_json()
    assert carol == {"publications": [], "truncated": False}


def test_the_list_filters_by_report_and_searches_title_and_period(client, world, make_user, api_token):
    make_user("admin@example.com", role="admin")
    admin = bearer(api_token(client, "admin@example.com"))
    ids = lambda **query: [p["id"] for p in client.get(API, query_string=query, headers=admin).get_json()["publications"]]  # noqa: E731
    published = world["published"]
    assert ids(report="monthly") == [published["m11"]["id"]]
    assert ids(q="w46") == [published["w46"]["id"]]
    assert ids(q="MONTHLY fig") == [published["m11"]["id"]]
    assert ids(q="%") == []  # LIKE wildcards are literal: "_" finds the slugs that hold one, nothing else
    assert sorted(ids(q="_")) == sorted(ids(report="weekly_statistics")) and published["m11"]["id"] not in ids(q="_")
    assert ids(report="nope") == []
    limited = client.get(API, query_string={"limit": 2}, headers=admin).get_json()
    assert len(limited["publications"]) == 2 and limited["truncated"] is True
    for bad in ({"limit": 0}, {"limit": "many"}, {"limit": 501}, {"q": "x" * 101}, {"q": "a\x00b"}, {"report": "\x00"}):
        response = client.get(API, query_string=bad, headers=admin)
        assert response.status_code == 400 and response.get_json()["error"] == "bad_request"


def test_one_publication_metadata_matches_the_publish_answer(client, world):
    mine = world["published"]["w47"]
    response = client.get(f"{API}/{mine['id']}", headers=bearer(world["tokens"]["alice"]))
    assert response.status_code == 200
    assert response.get_json() == {k: v for k, v in mine.items() if k != "readers"}  # who else reads it is the publisher's to know
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-jwt", "Basic YWxpY2U6cHc="])
def test_the_recipient_api_needs_an_access_token(client, world, header):
    headers = {"Authorization": header} if header else {}
    target = world["published"]["w47"]["id"]
    for url in (API, f"{API}/{target}", f"{API}/{target}/download"):
        response = client.get(url, headers=headers)
        assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


def test_a_publisher_token_is_not_a_recipient_token(client, world):
    response = client.get(API, headers=bearer(world["publisher"]))
    assert response.status_code == 401


def test_a_refresh_token_does_not_read_publications(client, world):
    refresh = api_sign_in(client, "alice@example.com")["refresh_token"]
    assert client.get(API, headers=bearer(refresh)).status_code == 401


# --- IDOR and traversal ----------------------------------------------------------------------


def test_another_users_publication_is_404_exactly_like_an_unknown_one(client, world):
    bobs = world["published"]["m11"]["id"]
    alice = bearer(world["tokens"]["alice"])
    for suffix in ("", "/download"):
        theirs = client.get(f"{API}/{bobs}{suffix}", headers=alice)
        unknown = client.get(f"{API}/AAAAAAAAAAAAAAAAAAAAAA{suffix}", headers=alice)
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.get_json() == unknown.get_json() == {"error": "not_found", "message": "There is nothing here."}
        assert theirs.headers.get("Content-Disposition") is None


@pytest.mark.parametrize("bad_id", [
    "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2e%2e", "..", ".",
    "..%5c..%5cwindows", "%00", "x%00.pdf", "1", "0", "-1", "A" * 33, "A" * 5000,
    "' OR '1'='1", "%252e%252e%252f",
])
def test_guessed_and_traversal_ids_are_404(client, world, bad_id):
    alice = bearer(world["tokens"]["alice"])
    for suffix in ("", "/download"):
        response = client.get(f"{API}/{bad_id}{suffix}", headers=alice)
        assert response.status_code == 404, (bad_id, suffix, response.status_code)
        assert response.mimetype == "application/json" and b"root:" not in response.data


def test_a_file_path_or_sha256_is_never_an_id(app, client, world):
    alice = bearer(world["tokens"]["alice"])
    sha = world["published"]["w47"]["sha256"]
    for guess in (sha, f"{sha}.pdf", sha[:32], str(app.config["FILES_DIR"]).replace("/", "%2f")):
        assert client.get(f"{API}/{guess}/download", headers=alice).status_code == 404


# --- download --------------------------------------------------------------------------------


def test_download_sends_the_published_bytes_as_an_attachment(client, world):
    mine = world["published"]["w47"]
    response = client.get(f"{API}/{mine['id']}/download", headers=bearer(world["tokens"]["alice"]))
    assert response.status_code == 200
    assert hashlib.sha256(response.data).hexdigest() == mine["sha256"] == hashlib.sha256(world["pdfs"]["w47"]).hexdigest()
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=weekly_statistics-v1-2026-W47.pdf"  # v1 of its week
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"].strip('"') == mine["sha256"]
    assert response.headers["Accept-Ranges"] == "bytes"


def test_download_filenames_keep_only_safe_characters(client, world):
    pdf = make_pdf(marker="odd")
    meta = metadata_for(pdf, report="weekly_statistics", run_id="odd", period_label='../2026 W48 "quoted";\u00e9<b>',
                        audience={"groups": ["finance"]})
    body = post_publication(client, world["publisher"], pdf, meta).get_json()
    response = client.get(f"{API}/{body['id']}/download", headers=bearer(world["tokens"]["alice"]))
    disposition = response.headers["Content-Disposition"]
    name = re.fullmatch(r"attachment; filename=(\S+)", disposition).group(1)
    assert re.fullmatch(r"[A-Za-z0-9._-]+\.pdf", name) and not name.startswith(".") and "/" not in name
    assert name.startswith("weekly_statistics-v1-")  # the first version of its (odd) period


def test_a_range_request_gets_206_with_exactly_that_slice(client, world):
    mine, pdf = world["published"]["w46"], world["pdfs"]["w46"]
    headers = {**bearer(world["tokens"]["alice"]), "Range": "bytes=5-104"}
    response = client.get(f"{API}/{mine['id']}/download", headers=headers)
    assert response.status_code == 206
    assert response.data == pdf[5:105]
    assert response.headers["Content-Range"] == f"bytes 5-104/{len(pdf)}"
    tail = client.get(f"{API}/{mine['id']}/download", headers={**bearer(world["tokens"]["alice"]), "Range": "bytes=-6"})
    assert tail.status_code == 206 and tail.data == pdf[-6:]
    beyond = client.get(f"{API}/{mine['id']}/download", headers={**bearer(world["tokens"]["alice"]), "Range": f"bytes={len(pdf) + 10}-"})
    assert beyond.status_code == 416


def test_if_none_match_with_the_etag_is_304_without_a_body(client, world):
    mine = world["published"]["w46"]
    url, alice = f"{API}/{mine['id']}/download", bearer(world["tokens"]["alice"])
    etag = client.get(url, headers=alice).headers["ETag"]
    response = client.get(url, headers={**alice, "If-None-Match": etag})
    assert response.status_code == 304 and response.data == b""
    assert client.get(url, headers={**alice, "If-None-Match": '"other"'}).status_code == 200


def test_downloads_are_audited_with_user_and_outcome(app, client, world):
    mine, bobs = world["published"]["w47"], world["published"]["m11"]
    alice = bearer(world["tokens"]["alice"])
    client.get(f"{API}/{mine['id']}/download", headers=alice)
    client.get(f"{API}/{bobs['id']}/download", headers=alice)
    db.session.expire_all()
    rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "download").order_by(AuditEvent.id)).all()
    assert [(r.outcome, r.detail.get("publication"), r.detail.get("reason")) for r in rows] == [
        ("ok", mine["id"], None), ("refused", None, "not_found")]
    assert rows[0].user_id == rows[1].user_id is not None and rows[0].ip == "127.0.0.1"
    tokens = [world["tokens"]["alice"], world["publisher"]]
    assert not any(t in str(r.detail) for r in rows for t in tokens)


def test_a_file_missing_from_the_store_is_404_not_500(app, client, world):
    mine = world["published"]["w46"]
    publication = db.session.scalars(sa.select(Publication).where(Publication.public_id == mine["id"])).one()
    path = app.config["FILES_DIR"] / publication.sha256[:2] / f"{publication.sha256}.pdf"
    path.unlink()
    assert client.get(f"{API}/{mine['id']}/download", headers=bearer(world["tokens"]["alice"])).status_code == 404


# --- the OpenAPI document --------------------------------------------------------------------


def _document(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_openapi_document_is_public_and_valid(client):
    document = _document(client)
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert {"bearer", "publisher"} <= set(document["components"]["securitySchemes"])


def test_every_api_route_is_declared_in_the_document(app, client):
    document = _document(client)
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert missing == [], f"declare these views with @operation(...): {missing}"
    assert any(path.startswith("/api/v1/auth/") for path in document["paths"]), "the sign-in API is declared too"


def test_the_document_is_built_from_the_app_not_kept_by_hand(app, client):
    assert _document(client) == build_document(app)


def _check(document: dict, path: str, method: str, response) -> None:
    """The response's status is declared for this operation and its JSON body fits the schema."""
    declared = document["paths"][path][method]["responses"]
    assert str(response.status_code) in declared, f"{method.upper()} {path} answered undeclared {response.status_code}"
    content = declared[str(response.status_code)].get("content", {})
    if "application/json" in content:
        schema = {**content["application/json"]["schema"], "components": document["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(response.get_json()), key=str)
        assert not errors, f"{method.upper()} {path} {response.status_code}: {errors[0].message}"
    else:
        assert not content or response.mimetype in content


def test_real_answers_match_their_declared_schemas(client, world):
    document = _document(client)
    alice = bearer(world["tokens"]["alice"])
    mine = world["published"]["w47"]["id"]
    item, listing, download = f"{API}/{{public_id}}", API, f"{API}/{{public_id}}/download"
    _check(document, listing, "get", client.get(API, headers=alice))
    _check(document, listing, "get", client.get(API, query_string={"limit": 0}, headers=alice))
    _check(document, listing, "get", client.get(API))
    _check(document, item, "get", client.get(f"{API}/{mine}", headers=alice))
    _check(document, item, "get", client.get(f"{API}/nope", headers=alice))
    _check(document, download, "get", client.get(f"{API}/{mine}/download", headers=alice))
    _check(document, download, "get", client.get(f"{API}/{mine}/download", headers={**alice, "Range": "bytes=0-9"}))
    pdf = make_pdf(marker="schema")
    publisher = world["publisher"]
    _check(document, listing, "post", post_publication(client, publisher, pdf, metadata_for(pdf, run_id="schema")))
    _check(document, listing, "post", post_publication(client, publisher, pdf, metadata_for(pdf, run_id="schema")))
    _check(document, listing, "post", post_publication(client, publisher, b"nope", metadata_for(b"nope", run_id="x")))
    _check(document, listing, "post", post_publication(client, publisher, pdf, metadata_for(pdf, run_id="y", sha256="0" * 64)))
    _check(document, listing, "post", post_publication(client, "wrong", pdf, metadata_for(pdf)))
    _check(document, "/api/openapi.json", "get", client.get("/api/openapi.json"))


def test_the_publish_body_schema_accepts_what_the_toolkit_sends(client):
    document = _document(client)
    body = document["paths"][API]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    metadata = {**body["properties"]["metadata"], "components": document["components"]}
    pdf = make_pdf()
    good = metadata_for(pdf, title="T", description=None, audience={"groups": ["g"], "users": ["a@b.example"]})
    assert not list(Draft202012Validator(metadata).iter_errors(good))
    assert list(Draft202012Validator(metadata).iter_errors({**good, "surprise": 1}))
    assert body["required"] == ["file", "metadata"]
