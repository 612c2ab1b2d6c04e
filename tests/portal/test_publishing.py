"""POST /api/v1/publications: publisher tokens, upload checks, versions, idempotency, audiences.

Every test runs on SQLite and on PostgreSQL. The concurrency tests send real HTTP requests from
threads to the app served on loopback, so two requests really overlap in two DB sessions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask_sqlalchemy.session import Session as FlaskSession
from werkzeug.serving import make_server

from publish_server import access
from publish_server.extensions import db
from publish_server.models import AuditEvent, Grant, Group, Publication, PublisherToken, Report, utcnow
from publish_server.publishing import create_publisher_token
from tests.portal.conftest import make_pdf

ENDPOINT = "/api/v1/publications"


# --- helpers (imported by test_api.py and tests/test_publish_client.py) ----------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_publisher_token(name: str = "ci") -> str:
    """A publisher token row (committed); returns the plaintext."""
    _row, plaintext = create_publisher_token(name)
    db.session.commit()
    return plaintext


def metadata_for(pdf: bytes, *, report: str = "weekly_statistics", run_id: str = "run-1", **extra) -> dict:
    return {"report": report, "run_id": run_id, "sha256": sha256(pdf), "period_label": "2026-W47",
            "pages": 1, "parameters": {"week": "2026-11-16"}, **extra}


def post_publication(client, token: str | None, pdf: bytes | None, metadata: dict | str | None, *, headers=None,
                     metadata_as_file: bool = False):
    """POST the multipart upload with the Flask test client (the metadata as a form field, or as a
    file part like ``curl -F metadata=@meta.json``)."""
    data: dict = {}
    if metadata is not None:
        data["metadata"] = metadata if isinstance(metadata, str) else json.dumps(metadata)
        if metadata_as_file:
            data["metadata"] = (io.BytesIO(data["metadata"].encode()), "meta.json", "application/json")
    if pdf is not None:
        data["file"] = (io.BytesIO(pdf), "report.pdf", "application/pdf")
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return client.post(ENDPOINT, data=data, headers=sent, content_type="multipart/form-data")


def publish_ok(client, token: str, pdf: bytes | None = None, **meta) -> dict:
    pdf = pdf if pdf is not None else make_pdf(marker=meta.get("run_id", "run-1"))
    response = post_publication(client, token, pdf, metadata_for(pdf, **meta))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def stored_files(app) -> list[Path]:
    """Every file under FILES_DIR, temporary ones included."""
    root = Path(app.config["FILES_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def publication_count() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Publication))


def audit_rows(event: str = "publish") -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)))


@contextlib.contextmanager
def serve(wsgi_app) -> Iterator[str]:
    """Serve ``wsgi_app`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def token(app) -> str:
    return new_publisher_token()


# --- the publisher token ---------------------------------------------------------------------


def test_publish_answers_201_with_the_publication_and_stores_the_file(app, client, token):
    pdf = make_pdf(pages=2)
    response = post_publication(client, token, pdf, metadata_for(pdf, pages=2, title="Weekly Statistics"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) >= {"id", "report", "version", "run_id", "sha256", "size", "pages", "period_label", "created_at", "download_url"}
    assert (body["report"], body["version"], body["run_id"], body["sha256"], body["size"], body["pages"]) == (
        "weekly_statistics", 1, "run-1", sha256(pdf), len(pdf), 2)
    assert body["period_label"] == "2026-W47" and body["created_at"].endswith("Z")
    assert body["download_url"] == f"/api/v1/publications/{body['id']}/download"
    # The file is stored under its server-computed hash, and nothing else (no temp files).
    files = stored_files(app)
    assert [f.name for f in files] == [f"{sha256(pdf)}.pdf"] and files[0].read_bytes() == pdf
    report = db.session.scalars(sa.select(Report)).one()
    assert (report.slug, report.title) == ("weekly_statistics", "Weekly Statistics")
    publisher = db.session.scalars(sa.select(PublisherToken)).one()
    assert publisher.last_used_at is not None
    [event] = audit_rows()
    assert (event.outcome, event.detail["publication"], event.detail["publisher"]) == ("ok", body["id"], "ci")


def test_the_stored_token_is_only_its_sha256_and_a_hand_made_row_works(app, client):
    plaintext = "nbp_" + "x" * 43
    db.session.add(PublisherToken(name="by-hand", token_hash=sha256(plaintext.encode()), prefix=plaintext[:12]))
    db.session.commit()
    assert publish_ok(client, plaintext)["version"] == 1
    _row, other = create_publisher_token("generated")
    db.session.commit()
    stored = db.session.scalars(sa.select(PublisherToken.token_hash)).all()
    assert other not in stored and sha256(other.encode()) in stored
    assert len(other) >= 40  # 256 random bits, url-safe


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Bearer nbp_wrong", "Basic bmJwOng=", "nbp_raw-token-without-scheme"])
def test_missing_or_invalid_publisher_token_is_401_and_stores_nothing(app, client, token, header):
    pdf = make_pdf()
    response = post_publication(client, None, pdf, metadata_for(pdf), headers={"Authorization": header} if header else None)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert stored_files(app) == [] and publication_count() == 0
    [event] = audit_rows()
    assert event.outcome == "refused" and event.detail["reason"] in {"no_token", "bad_token"}


def test_a_publisher_token_in_the_query_string_or_form_is_not_accepted(app, client, token):
    pdf = make_pdf()
    data = {"metadata": json.dumps(metadata_for(pdf)), "file": (io.BytesIO(pdf), "r.pdf"), "token": token}
    response = client.post(f"{ENDPOINT}?token={token}", data=data, content_type="multipart/form-data")
    assert response.status_code == 401 and publication_count() == 0


def test_a_revoked_token_is_refused_like_an_unknown_one(app, client, token):
    row = db.session.scalars(sa.select(PublisherToken)).one()
    row.revoked_at = utcnow()
    db.session.commit()
    pdf = make_pdf()
    revoked = post_publication(client, token, pdf, metadata_for(pdf))
    unknown = post_publication(client, "nbp_unknown", pdf, metadata_for(pdf))
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.get_json() == unknown.get_json()
    assert [e.detail["reason"] for e in audit_rows()] == ["revoked_token", "bad_token"]
    assert publication_count() == 0


def test_the_token_never_reaches_the_audit_log(app, client, token):
    publish_ok(client, token)
    post_publication(client, token + "x", make_pdf(), metadata_for(make_pdf()))
    post_publication(client, token, b"not a pdf", metadata_for(b"not a pdf", run_id="run-2"))
    dumped = json.dumps([[e.event, e.outcome, e.detail] for e in audit_rows()])
    assert token not in dumped and token[4:20] not in dumped


# --- metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize(("metadata", "expected"), [
    (None, "metadata"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ({"run_id": "r1", "sha256": "0" * 64}, "metadata.report"),
    ({"report": "weekly", "sha256": "0" * 64}, "metadata.run_id"),
    ({"report": "weekly", "run_id": "r1", "sha256": "xyz"}, "metadata.sha256"),
    ({"report": "../etc", "run_id": "r1", "sha256": "0" * 64}, "metadata.report"),
    ({"report": "weekly", "run_id": "../../r1", "sha256": "0" * 64}, "metadata.run_id"),
    ({"report": "weekly", "run_id": "r1", "sha256": "0" * 64, "surprise": 1}, "metadata.surprise"),
    ({"report": "weekly", "run_id": "r1", "sha256": "0" * 64, "pages": -1}, "metadata.pages"),
    ({"report": "weekly", "run_id": "r1", "sha256": "0" * 64, "audience": {"users": ["not-an-email"]}}, "metadata.audience.users"),
])
def test_invalid_metadata_is_400_with_a_clear_message(app, client, token, metadata, expected):
    response = post_publication(client, token, make_pdf(), metadata)
    assert response.status_code == 400
    assert expected in response.get_json()["message"]
    assert stored_files(app) == [] and publication_count() == 0


@pytest.mark.parametrize("field", ["title", "period_label", "description", "audience_group", "audience_user"])
def test_control_characters_in_metadata_text_are_400_not_500(app, client, token, field):
    pdf = make_pdf()
    meta = metadata_for(pdf)
    if field == "audience_group":
        meta["audience"] = {"groups": ["fin\x00ance"]}
    elif field == "audience_user":
        meta["audience"] = {"users": ["a\x00b@example.com"]}
    else:
        meta[field] = "bad\x00text"
    response = post_publication(client, token, pdf, meta)
    assert response.status_code == 400 and publication_count() == 0


def test_nul_characters_inside_parameters_are_stored_safely(app, client, token):
    pdf = make_pdf()
    body = publish_ok(client, token, pdf, parameters={"note": "a\x00b", "nested": {"k": ["\x00"]}})
    assert body["parameters"]["note"] == "a\x00b"


def test_metadata_sent_as_a_file_part_is_read_too(app, client, token):
    pdf = make_pdf()
    data = {"metadata": (io.BytesIO(json.dumps(metadata_for(pdf)).encode()), "meta.json", "application/json"),
            "file": (io.BytesIO(pdf), "report.pdf", "application/pdf")}
    response = client.post(ENDPOINT, data=data, headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data")
    assert response.status_code == 201


def test_a_missing_file_part_or_a_json_body_is_400(app, client, token):
    response = post_publication(client, token, None, metadata_for(make_pdf()))
    assert response.status_code == 400 and "'file'" in response.get_json()["message"]
    response = client.post(ENDPOINT, json=metadata_for(make_pdf()), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and "multipart/form-data" in response.get_json()["message"]
    assert publication_count() == 0


def test_secrets_in_url_parameters_are_masked_before_they_are_stored(app, client, token):
    pdf = make_pdf()
    meta = metadata_for(pdf, parameters={"database_url": "postgresql://reader:s3cret@db/events", "week": "2026-11-16"})
    body = post_publication(client, token, pdf, meta).get_json()
    stored = db.session.scalars(sa.select(Publication)).one().parameters
    assert stored["database_url"] == "postgresql://reader:***@db/events" and "s3cret" not in json.dumps(body)


# --- the bytes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "status"), [
    (b"<html><body>hello</body></html>", 415),
    (b"PK\x03\x04 a zip file", 415),
    (b"%PD", 415),  # shorter than the magic
    (b" %PDF-1.7 leading space", 415),
    (b"", 400),  # empty
])
def test_anything_but_a_pdf_is_refused_and_nothing_is_stored(app, client, token, payload, status):
    response = post_publication(client, token, payload, metadata_for(payload))
    assert response.status_code == status, response.get_json()
    assert stored_files(app) == [] and publication_count() == 0
    assert audit_rows()[-1].outcome == "refused"


def test_a_truncated_pdf_is_refused_even_with_a_matching_checksum(app, client, token):
    pdf = make_pdf(pages=3)
    half = pdf[: len(pdf) // 2]
    response = post_publication(client, token, half, metadata_for(half))
    assert response.status_code == 415 and "incomplete" in response.get_json()["message"]
    assert stored_files(app) == [] and publication_count() == 0


def test_a_checksum_mismatch_is_422_and_nothing_is_stored(app, client, token):
    pdf = make_pdf()
    response = post_publication(client, token, pdf, metadata_for(pdf, sha256=sha256(b"something else")))
    assert response.status_code == 422 and response.get_json()["error"] == "checksum_mismatch"
    assert stored_files(app) == [] and publication_count() == 0
    assert audit_rows()[-1].detail["reason"] == "checksum_mismatch"


def _padded_pdf(size: int) -> bytes:
    """A valid PDF grown to ``size`` bytes with a comment line before its trailer."""
    pdf = make_pdf()
    head, tail = pdf[:-6], pdf[-6:]  # tail is b"%%EOF\n"
    return head + b"%" + b"x" * (size - len(pdf) - 2) + b"\n" + tail


def _cap_one_mib(app) -> None:
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "MAX_UPLOAD_MB": 1}
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024  # as create_app sets it: cap + 1 MiB


def test_a_file_over_the_cap_is_413_and_leaves_no_file_not_even_a_temporary_one(app, client, token):
    _cap_one_mib(app)
    at_cap = _padded_pdf(1024 * 1024)
    assert post_publication(client, token, at_cap, metadata_for(at_cap, run_id="at-cap")).status_code == 201
    before = stored_files(app)
    over = _padded_pdf(1024 * 1024 + 1)  # over the cap, under MAX_CONTENT_LENGTH: the store refuses it
    response = post_publication(client, token, over, metadata_for(over, run_id="over"))
    assert response.status_code == 413 and response.get_json()["error"] == "too_large"
    assert stored_files(app) == before and publication_count() == 1
    assert audit_rows()[-1].detail["reason"] == "too_large"


def test_a_body_over_max_content_length_is_413_before_it_is_read(app, client, token):
    _cap_one_mib(app)
    huge = _padded_pdf(3 * 1024 * 1024)
    response = post_publication(client, token, huge, metadata_for(huge))
    assert response.status_code == 413
    assert stored_files(app) == [] and publication_count() == 0
    assert audit_rows()[-1].outcome == "refused"


# --- versions and idempotency ---------------------------------------------------------------


def test_publishing_the_same_run_again_answers_200_with_the_same_publication(app, client, token):
    pdf = make_pdf()
    first = post_publication(client, token, pdf, metadata_for(pdf))
    again = post_publication(client, token, pdf, metadata_for(pdf))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert publication_count() == 1 and len(stored_files(app)) == 1
    assert [e.detail["created"] for e in audit_rows()] == [True, False]


def test_the_same_run_with_other_bytes_is_409_and_changes_nothing(app, client, token):
    pdf = make_pdf(marker="one")
    first = publish_ok(client, token, pdf)
    other = make_pdf(marker="two")
    response = post_publication(client, token, other, metadata_for(other))
    assert response.status_code == 409 and "different content" in response.get_json()["message"]
    assert publication_count() == 1
    assert [f.name for f in stored_files(app)] == [f"{first['sha256']}.pdf"]


def test_a_republish_restores_a_file_the_store_lost(app, client, token):
    pdf = make_pdf()
    first = publish_ok(client, token, pdf)
    [path] = stored_files(app)
    path.unlink()
    assert publish_ok(client, token, pdf) == first
    assert path.read_bytes() == pdf and publication_count() == 1


def test_a_new_run_is_a_new_version_per_report(app, client, token):
    versions = [publish_ok(client, token, run_id=f"run-{i}")["version"] for i in range(1, 4)]
    other = publish_ok(client, token, report="monthly", run_id="run-1")
    assert versions == [1, 2, 3] and other["version"] == 1
    # the same bytes in another run are a new version too (the store keeps one copy)
    pdf = make_pdf(marker="same")
    assert publish_ok(client, token, pdf, run_id="run-a")["version"] == 4
    assert publish_ok(client, token, pdf, run_id="run-b")["version"] == 5


def test_an_unknown_report_is_refused_when_reports_are_not_created_automatically(app, client, token):
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "AUTO_CREATE_REPORTS": False}
    pdf = make_pdf()
    response = post_publication(client, token, pdf, metadata_for(pdf, report="nobody_made_me"))
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown_report" and "nobody_made_me" in response.get_json()["message"]
    assert stored_files(app) == [] and publication_count() == 0
    db.session.add(Report(slug="nobody_made_me", title="Made by an operator"))
    db.session.commit()
    assert publish_ok(client, token, pdf, report="nobody_made_me", title="Ignored")["report_title"] == "Made by an operator"


# --- audience --------------------------------------------------------------------------------


def test_an_audience_grants_the_publication_to_its_groups_and_users_only(app, client, token, make_user):
    reader = make_user("reader@example.com", groups=("finance",))
    named = make_user("Named@Example.com")
    outsider = make_user("outsider@example.com", groups=("sales",))
    body = publish_ok(client, token, audience={"groups": ["finance"], "users": ["NAMED@example.com"]})
    publication = db.session.scalars(sa.select(Publication)).one()
    grants = db.session.scalars(sa.select(Grant).where(Grant.publication_id == publication.id)).all()
    assert {(g.group_id is not None, g.user_id) for g in grants} == {(True, None), (False, named.id)}
    visible = lambda user: [p.public_id for p in db.session.scalars(access.visible_publications(user))]  # noqa: E731
    assert visible(reader) == [body["id"]] and visible(named) == [body["id"]] and visible(outsider) == []


def test_without_an_audience_the_publication_inherits_the_report_grants(app, client, token, make_user):
    reader = make_user("reader@example.com")
    outsider = make_user("outsider@example.com")
    first = publish_ok(client, token, run_id="run-1")
    report = db.session.scalars(sa.select(Report)).one()
    db.session.add(Grant(report_id=report.id, user_id=reader.id))
    db.session.commit()
    second = publish_ok(client, token, run_id="run-2")
    visible = lambda user: {p.public_id for p in db.session.scalars(access.visible_publications(user))}  # noqa: E731
    assert visible(reader) == {first["id"], second["id"]} and visible(outsider) == set()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Grant).where(Grant.publication_id.is_not(None))) == 0


def test_an_unknown_group_or_user_in_the_audience_is_400_naming_them(app, client, token, make_user):
    make_user("known@example.com", groups=("finance",))
    pdf = make_pdf()
    meta = metadata_for(pdf, audience={"groups": ["finance", "ghosts"], "users": ["known@example.com", "nobody@example.com"]})
    response = post_publication(client, token, pdf, meta)
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "'ghosts'" in message and "'nobody@example.com'" in message and "finance" not in message
    assert stored_files(app) == [] and publication_count() == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Group)) == 1  # nothing created


# --- concurrency -----------------------------------------------------------------------------


def _post_at_once(url: str, token: str, uploads: list[tuple[bytes, dict]]) -> list[requests.Response]:
    barrier = threading.Barrier(len(uploads))
    results: list = [None] * len(uploads)

    def send(i: int, pdf: bytes, meta: dict) -> None:
        barrier.wait(timeout=10)
        results[i] = requests.post(url + ENDPOINT, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                                   files={"file": ("report.pdf", pdf, "application/pdf"), "metadata": (None, json.dumps(meta))})

    threads = [threading.Thread(target=send, args=(i, pdf, meta)) for i, (pdf, meta) in enumerate(uploads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_publishes_of_one_run_make_one_publication(app, token):
    pdf = make_pdf()
    with serve(app) as url:
        for round_ in range(3):
            meta = metadata_for(pdf, report=f"race{round_}", run_id="same-run")
            responses = _post_at_once(url, token, [(pdf, meta)] * 3)
            assert sorted(r.status_code for r in responses) == [200, 200, 201], [r.text for r in responses]
            assert len({r.json()["id"] for r in responses}) == 1
    assert publication_count() == 3


def test_concurrent_publishes_of_different_runs_get_distinct_versions(app, token):
    with serve(app) as url:
        for round_ in range(3):
            uploads = []
            for i in range(3):
                pdf = make_pdf(marker=f"{round_}-{i}")
                uploads.append((pdf, metadata_for(pdf, report="weekly", run_id=f"run-{round_}-{i}")))
            responses = _post_at_once(url, token, uploads)
            assert [r.status_code for r in responses] == [201] * 3, [r.text for r in responses]
    versions = db.session.scalars(sa.select(Publication.version).order_by(Publication.version)).all()
    assert versions == list(range(1, 10))


@contextlib.contextmanager
def _rival_inserts_first(app, run_id: str, sha: str):
    """Just before the request's first publication flush, another connection commits a rival
    row of the same report, variant and period (the moment two publishers collide), so the
    request must recover from the conflict."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    done = []

    def rival(session, _context, _instances):
        if done or not any(isinstance(obj, Publication) for obj in session.new):
            return
        done.append(True)
        with engine.begin() as conn:
            report_id = conn.execute(sa.text("SELECT id FROM reports WHERE slug = 'weekly'")).scalar_one()
            latest = conn.execute(sa.text("SELECT max(version) FROM publications WHERE report_id = :r AND period_label = '2026-W47'"
                                          " AND variant_label = ''"), {"r": report_id}).scalar_one()
            conn.execute(sa.text(
                "INSERT INTO publications (public_id, report_id, version, parameters, period_label, run_id, sha256, size, created_at,"
                " variant, variant_label, search_text) VALUES (:p, :r, :v, '{}', '2026-W47', :run, :sha, 1, :at, '{}', '', '')"),
                {"p": f"rival-{run_id}", "r": report_id, "v": latest + 1, "run": run_id, "sha": sha, "at": utcnow()})

    sa.event.listen(FlaskSession, "before_flush", rival)
    try:
        yield done
    finally:
        sa.event.remove(FlaskSession, "before_flush", rival)
        engine.dispose()


def test_losing_the_version_race_takes_the_next_version(app, client, token):
    publish_ok(client, token, report="weekly", run_id="run-1")
    pdf = make_pdf(marker="mine")
    with _rival_inserts_first(app, "rival-run", sha256(b"rival")) as collided:
        response = post_publication(client, token, pdf, metadata_for(pdf, report="weekly", run_id="mine"))
    assert collided and response.status_code == 201
    assert response.get_json()["version"] == 3  # the rival took 2
    rows = db.session.execute(sa.select(Publication.run_id, Publication.version).order_by(Publication.version)).all()
    assert [tuple(r) for r in rows] == [("run-1", 1), ("rival-run", 2), ("mine", 3)]


def test_losing_the_race_for_the_same_run_returns_the_winner(app, client, token):
    publish_ok(client, token, report="weekly", run_id="run-1")
    pdf = make_pdf(marker="same")
    with _rival_inserts_first(app, "same", sha256(pdf)) as collided:
        response = post_publication(client, token, pdf, metadata_for(pdf, report="weekly", run_id="same"))
    assert collided and response.status_code == 200
    assert response.get_json()["id"] == "rival-same" and response.get_json()["version"] == 2
    assert publication_count() == 2
