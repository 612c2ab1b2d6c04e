"""Published files in S3-compatible object storage (FILES_URL), on a real server: moto's standalone
S3 as its own process on loopback, with a TCP proxy process in front for the faults.

Publication, download (Range, 304, presigned 303 followed by a plain HTTP client), idempotent
re-publish, prune and the start-up sweep, `files migrate` (killed, then resumed), a notification's
attached PDF; faults: the store killed mid-upload, refusing the credentials, slow, away while a
notification is composed. On SQLite only: the database is not what is
tested here (tests/portal/test_publishing.py runs the same publishing code on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import subprocess
import sys
import threading
import time

import pytest
import requests
import sqlalchemy as sa
from flask_migrate import upgrade

from publish_server import create_app
from publish_server.errors import ConfigError
from publish_server.extensions import db
from publish_server.models import Publication, User
from publish_server.storage import store_for
from tests.portal.conftest import api_sign_in, base_config
from tests.portal.s3_server import REGION, ROOT, keys, moto_server, proxy, s3_client
from tests.portal.test_publishing import audit_rows, metadata_for, new_publisher_token, post_publication, publication_count

SECRET = "s3-secret-" + secrets.token_hex(12)  # must never show in a log line or an answer
API = "/api/v1/publications"
READER = "reader@example.com"


def big_pdf(size: int, marker: bytes = b"") -> bytes:
    """Passes the portal's checks (PDF head, %%EOF trailer): large enough to be caught mid-upload."""
    body = marker + os.urandom(size)
    return b"%PDF-1.4\n%" + body.hex().encode()[:size] + b"\n%%EOF\n"


@pytest.fixture
def store_log():
    """The object store's log lines (its own handler: Alembic's logging setup replaces the root's)."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("publish_server.s3_store")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def moto():
    server = moto_server()
    yield server
    server.kill()


def make_app(tmp_path, port: int, bucket: str, **settings):
    settings = {"FILES_URL": f"s3://{bucket}/reports", "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "S3_REGION": REGION,
                "S3_ACCESS_KEY_ID": "portal", "S3_SECRET_ACCESS_KEY": SECRET, "S3_TIMEOUT_SECONDS": 3, **settings}
    app = create_app(base_config(**settings), instance_path=tmp_path / "instance")
    with app.app_context():
        upgrade()
        db.session.add(User(email=READER, display_name="reader", password_hash=_hash(app), role="recipient"))
        db.session.commit()
    return app


def _hash(app) -> str:
    from publish_server.signin.passwords import Passwords
    from tests.portal.conftest import TEST_PASSWORD

    return Passwords.from_settings(app.config["NBPRESS"]).hash(TEST_PASSWORD)


@pytest.fixture
def bucket(moto):
    name = f"nbpress-{secrets.token_hex(4)}"
    s3_client(moto.port).create_bucket(Bucket=name)
    return name


@pytest.fixture
def app(tmp_path, moto, bucket):
    app = make_app(tmp_path, moto.port, bucket)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def publish(client, token, pdf: bytes, **meta):
    return post_publication(client, token, pdf, metadata_for(pdf, audience={"users": [READER]}, **meta))


def puts_counted(app) -> list[str]:
    """Every PutObject the portal's own client sends (botocore's event hooks: observed, not replaced)."""
    seen: list[str] = []
    store_for(app).client.meta.events.register("before-call.s3.PutObject", lambda params, **_: seen.append(params["url_path"]))
    return seen


def leftovers_in_files_dir(app) -> list[str]:
    root = app.config["FILES_DIR"]
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- publication, downloads, re-publish -----------------------------------------------------------


def test_publish_then_download_with_range_and_etag_and_republish_writes_once(app, moto, bucket):
    client, observer = app.test_client(), s3_client(moto.port)
    token, pdf = new_publisher_token(), big_pdf(300_000)
    sha = hashlib.sha256(pdf).hexdigest()
    puts = puts_counted(app)
    lying = post_publication(client, token, pdf, metadata_for(pdf, run_id="r0", sha256="0" * 64))  # every byte read, then refused
    truncated = post_publication(client, token, pdf[:-7], metadata_for(pdf[:-7], run_id="r0"))
    assert (lying.status_code, truncated.status_code) == (422, 415)
    assert puts == [] and keys(observer, bucket) == [] and leftovers_in_files_dir(app) == [] and publication_count() == 0
    first = publish(client, token, pdf, run_id="r1")
    assert first.status_code == 201, first.get_json()
    assert keys(observer, bucket) == [f"reports/{sha[:2]}/{sha}.pdf"]
    stored = observer.get_object(Bucket=bucket, Key=f"reports/{sha[:2]}/{sha}.pdf")
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == sha and stored["ContentType"] == "application/pdf"
    assert leftovers_in_files_dir(app) == []  # the spooled upload is gone
    again = publish(client, token, pdf, run_id="r1")  # the same run: that publication, nothing read
    other_run = publish(client, token, pdf, run_id="r2")  # a new version with the same bytes: no second write
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert other_run.status_code == 201 and len(puts) == 1

    alice = {"Authorization": f"Bearer {api_sign_in(client, READER)['access_token']}"}
    url = f"{API}/{first.get_json()['id']}/download"
    whole = client.get(url, headers=alice)
    assert whole.status_code == 200 and hashlib.sha256(whole.data).hexdigest() == sha
    assert whole.headers["Content-Disposition"] == "attachment; filename=weekly_statistics-v1-2026-W47.pdf"
    assert whole.headers["ETag"].strip('"') == sha and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Cache-Control"] == "no-store" and whole.headers["X-Content-Type-Options"] == "nosniff"
    assert int(whole.headers["Content-Length"]) == len(pdf) and whole.headers["Last-Modified"]
    part = client.get(url, headers={**alice, "Range": "bytes=100000-100099"})
    assert part.status_code == 206 and part.data == pdf[100000:100100]
    assert part.headers["Content-Range"] == f"bytes 100000-100099/{len(pdf)}"
    tail = client.get(url, headers={**alice, "Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.data == pdf[-7:]
    assert client.get(url, headers={**alice, "Range": f"bytes={len(pdf) + 5}-"}).status_code == 416
    unchanged = client.get(url, headers={**alice, "If-None-Match": whole.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert [r.outcome for r in audit_rows("download")] == ["ok"] * 5


def test_presigned_downloads_redirect_after_the_checks_and_the_audit_row(tmp_path, moto, bucket):
    app = make_app(tmp_path, moto.port, bucket, S3_PRESIGNED_DOWNLOADS=True, S3_PRESIGN_SECONDS=30)
    with app.app_context():
        client, token, pdf = app.test_client(), new_publisher_token(), big_pdf(50_000)
        body = publish(client, token, pdf, run_id="r1").get_json()
        alice = {"Authorization": f"Bearer {api_sign_in(client, READER)['access_token']}"}
        answer = client.get(f"{API}/{body['id']}/download", headers=alice)
        assert answer.status_code == 303 and answer.headers["Cache-Control"] == "no-store"
        location = answer.headers["Location"]
        assert location.startswith(f"http://127.0.0.1:{moto.port}/{bucket}/reports/") and "Expires=" in location
        assert SECRET not in location
        assert [r.outcome for r in audit_rows("download")] == ["ok"]  # stored before the redirect went out
        fetched = requests.get(location, timeout=10)  # a plain HTTP client, as a browser would follow it
        assert fetched.status_code == 200 and hashlib.sha256(fetched.content).hexdigest() == body["sha256"]
        assert fetched.headers["Content-Disposition"] == "attachment; filename=weekly_statistics-v1-2026-W47.pdf"
        assert fetched.headers["Content-Type"] == "application/pdf"
        assert client.get(f"{API}/nosuchid0000/download", headers=alice).status_code == 404  # no URL without a grant
        db.session.remove()


# --- retention and the sweep ------------------------------------------------------------------------


def test_prune_removes_objects_only_when_unreferenced_and_the_sweep_clears_leftovers(tmp_path, app, moto, bucket):
    client, observer, token = app.test_client(), s3_client(moto.port), new_publisher_token()
    old, shared = big_pdf(2000, b"old"), big_pdf(2000, b"shared")
    key = lambda pdf: f"reports/{hashlib.sha256(pdf).hexdigest()[:2]}/{hashlib.sha256(pdf).hexdigest()}.pdf"  # noqa: E731
    for run, pdf in (("r1", old), ("r2", shared), ("r3", shared)):  # v2 and v3 share one file
        assert publish(client, token, pdf, run_id=run).status_code == 201
    result = app.test_cli_runner().invoke(args=["publications", "prune", "--keep", "1", "--yes"])
    assert result.exit_code == 0, result.output
    assert keys(observer, bucket) == [key(shared)]  # v1's file went; v2's row went but v3 still reads the file
    assert publication_count() == 1 and "removed 2 publications, 1 files" in result.output

    orphan = big_pdf(1000, b"orphan")  # a file a killed server stored before its row committed
    observer.put_object(Bucket=bucket, Key=key(orphan), Body=orphan)
    observer.create_multipart_upload(Bucket=bucket, Key="reports/ab/unfinished.pdf")
    create_app(dict(app.config["NBPRESS"], SWEEP_AGE_SECONDS=0, TESTING=True), instance_path=tmp_path / "instance")
    assert keys(observer, bucket) == [key(shared)]
    assert observer.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# --- migrate --------------------------------------------------------------------------------------


def test_migrate_copies_the_folder_store_verified_and_resumes_after_being_killed(tmp_path, moto, bucket):
    s3 = {"S3_ENDPOINT_URL": f"http://127.0.0.1:{moto.port}", "S3_REGION": REGION, "S3_ACCESS_KEY_ID": "portal",
          "S3_SECRET_ACCESS_KEY": SECRET}
    folder = create_app(base_config(**s3), instance_path=tmp_path / "instance")  # no FILES_URL: the folder store
    with folder.app_context():
        upgrade()
        client, token = folder.test_client(), new_publisher_token()
        pdfs = [big_pdf(40_000, bytes([n])) for n in range(4)]
        for n, pdf in enumerate(pdfs):
            assert post_publication(client, token, pdf, metadata_for(pdf, run_id=f"r{n}")).status_code == 201
        db.session.remove()
    settings = {k: v for k, v in folder.config["NBPRESS"].items() if isinstance(v, (str, int))}
    env = {**os.environ, **{f"NBPRESS_{k}": str(v) for k, v in settings.items()}, "NBPRESS_INSTANCE": str(tmp_path / "instance"),
           "PYTHONPATH": str(ROOT)}
    slow = proxy(moto.port, delay=0.05, chunk=16384)  # each file takes a while: the kill lands mid-run
    try:
        run = subprocess.Popen([sys.executable, "-m", "publish_server.admin", "files", "migrate", "--to", f"s3://{bucket}/moved"],
                               env={**env, "NBPRESS_S3_ENDPOINT_URL": f"http://127.0.0.1:{slow.port}"}, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while "copied" not in (line := run.stdout.readline()):
            assert line, "migrate ended before copying anything"
        run.kill()  # SIGKILL, mid-way through the next file
        run.wait(timeout=10)
    finally:
        slow.kill()
    observer = s3_client(moto.port)
    half = keys(observer, bucket)
    assert 1 <= len(half) < len(pdfs)

    migrate = ["files", "migrate", "--to", f"s3://{bucket}/moved"]
    with folder.app_context():
        resumed = folder.test_cli_runner().invoke(args=migrate)
        assert resumed.exit_code == 0, resumed.output
        assert f"{len(pdfs) - len(half)} copied" in resumed.output and f"{len(half)} already there" in resumed.output
        assert "0 corrupt" in resumed.output and SECRET not in resumed.output
        for pdf in pdfs:
            sha = hashlib.sha256(pdf).hexdigest()
            got = observer.get_object(Bucket=bucket, Key=f"moved/{sha[:2]}/{sha}.pdf")["Body"].read()
            assert hashlib.sha256(got).hexdigest() == sha

        victim = next((tmp_path / "instance" / "files").glob("??/*.pdf"))  # bit rot in the folder store
        victim.write_bytes(victim.read_bytes()[:-1] + b"X")
        corrupt = folder.test_cli_runner().invoke(args=migrate)
        assert corrupt.exit_code == 1 and f"{victim.name}: its bytes hash to" in corrupt.output and "NOT copied" in corrupt.output
        db.session.remove()


# --- faults -----------------------------------------------------------------------------------------


def _publish_in_thread(app, token, pdf) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        with app.app_context():
            outcome["response"] = publish(app.test_client(), token, pdf, run_id="mid")
            db.session.remove()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_the_store_killed_mid_upload_is_a_503_with_no_row_and_no_object(tmp_path, moto, bucket, store_log):
    link = proxy(moto.port, stall_after=200_000)  # lets the HEAD and part of the PUT through, then holds
    app = make_app(tmp_path, link.port, bucket)
    pdf = big_pdf(1_000_000)
    try:
        with app.app_context():
            token = new_publisher_token()
            thread, outcome = _publish_in_thread(app, token, pdf)
            link.wait_for_line("stalled")
            link.kill()  # the store vanishes mid-PUT (the portal's retry finds no server)
            thread.join(timeout=60)
            response = outcome["response"]
            assert response.status_code == 503 and response.get_json()["error"] == "storage_unavailable"
            assert response.headers["Retry-After"] == "5"
            assert publication_count() == 0 and audit_rows()[-1].outcome == "refused"
            assert leftovers_in_files_dir(app) == []
            assert keys(s3_client(moto.port), bucket) == []  # the store, still up behind the proxy, holds nothing
            assert any(line.startswith(f"object store s3://{bucket}/reports: PUT failed") for line in store_log)
            assert SECRET not in "\n".join(store_log)
            link = proxy(moto.port, port=link.port)  # back: the same upload now goes through
            client = app.test_client()
            published = publish(client, token, pdf, run_id="mid")
            assert published.status_code == 201
            reader = {"Authorization": f"Bearer {api_sign_in(client, READER)['access_token']}"}
            link.kill()  # and gone again: a download is a 503 too, not a 500
            answer = client.get(f"{API}/{published.get_json()['id']}/download", headers=reader)
            assert answer.status_code == 503 and answer.get_json()["error"] == "storage_unavailable"
            db.session.remove()
    finally:
        link.kill()


def test_the_s3_server_process_killed_mid_upload_leaves_nothing_once_it_is_back(tmp_path):
    store = moto_server()
    link = proxy(store.port, stall_after=200_000)
    s3_client(store.port).create_bucket(Bucket="nbpress-killed")
    app = make_app(tmp_path, link.port, "nbpress-killed")
    try:
        with app.app_context():
            thread, outcome = _publish_in_thread(app, new_publisher_token(), big_pdf(1_000_000))
            link.wait_for_line("stalled")
            store.kill()  # moto itself, SIGKILL
            thread.join(timeout=60)
            assert outcome["response"].status_code == 503 and publication_count() == 0
            store = moto_server(store.port)  # back (moto keeps its buckets in memory: they went with it)
            observer = s3_client(store.port)
            observer.create_bucket(Bucket="nbpress-killed")
            assert keys(observer, "nbpress-killed") == [] and leftovers_in_files_dir(app) == []
            db.session.remove()
    finally:
        link.kill()
        store.kill()


def test_wrong_credentials_are_a_503_with_a_clear_log_line_and_no_secret(tmp_path, store_log):
    refusing = moto_server(auth=True)  # knows no key at all: every request is refused as a wrong key is
    try:
        app = make_app(tmp_path, refusing.port, "nbpress-auth")
        with app.app_context():
            response = publish(app.test_client(), new_publisher_token(), big_pdf(5000), run_id="r1")
            assert response.status_code == 503 and response.get_json()["error"] == "storage_unavailable"
            assert SECRET not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
            assert publication_count() == 0
            db.session.remove()
        line = next(line for line in store_log if "HEAD failed" in line)
        assert "s3://nbpress-auth/reports" in line and "HTTP 403" in line and "S3_SECRET_ACCESS_KEY" in line
        assert SECRET not in "\n".join(store_log)
    finally:
        refusing.kill()


def test_a_slow_store_never_shows_half_a_file_and_too_slow_is_a_503(tmp_path, moto, bucket):
    slow = proxy(moto.port, delay=0.02, chunk=16384)  # ~40 chunks: most of a second for the PUT
    observer, pdf = s3_client(moto.port), big_pdf(600_000)
    sha = hashlib.sha256(pdf).hexdigest()
    key = f"reports/{sha[:2]}/{sha}.pdf"
    try:
        app = make_app(tmp_path, slow.port, bucket)
        with app.app_context():
            thread, outcome = _publish_in_thread(app, new_publisher_token(), pdf)
            seen = set()
            while thread.is_alive():  # a reader polling the store meanwhile: nothing, or the whole file
                try:
                    got = observer.get_object(Bucket=bucket, Key=key)["Body"].read()
                    seen.add(hashlib.sha256(got).hexdigest() == sha)
                except observer.exceptions.NoSuchKey:
                    seen.add("absent")
                time.sleep(0.05)
            assert outcome["response"].status_code == 201 and seen <= {"absent", True} and "absent" in seen
            db.session.remove()
    finally:
        slow.kill()

    stalled = proxy(moto.port, stall_after=100_000)  # a store that stops answering: the timeout (1 s) ends it
    try:
        app = make_app(tmp_path / "second", stalled.port, bucket, S3_TIMEOUT_SECONDS=1)
        with app.app_context():
            started = time.monotonic()
            response = publish(app.test_client(), new_publisher_token(), big_pdf(400_000, b"stalled"), run_id="r9")
            assert response.status_code == 503 and time.monotonic() - started < 15
            assert publication_count() == 0 and len(keys(observer, bucket)) == 1
            db.session.remove()
    finally:
        stalled.kill()


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "problem"), [
    ({"FILES_URL": "https://bucket/x"}, "setting FILES_URL: expected s3://bucket/prefix"),
    ({"FILES_URL": "s3://Bad_Bucket/x"}, "is not an S3 bucket name"),
    ({"FILES_URL": "s3://nbpress/../x"}, "setting FILES_URL: the prefix"),
    ({"FILES_URL": "s3://nbpress/x", "ACCEL_REDIRECT_PREFIX": "/_files"}, "use S3_PRESIGNED_DOWNLOADS"),
    ({"S3_ENDPOINT_URL": f"http://key:{SECRET}@127.0.0.1:9000"}, "no user or password"),
])
def test_object_storage_settings_are_checked_in_one_line(tmp_path, settings, problem):
    with pytest.raises(ConfigError) as caught:
        create_app(base_config(**settings), instance_path=tmp_path / "instance")
    assert problem in str(caught.value) and SECRET not in str(caught.value) and "\n" not in str(caught.value)


def test_the_rows_name_the_files_the_store_holds(app, moto, bucket):
    """The content address is the row's SHA-256 (nothing else): what downloads and prune rely on."""
    client, token = app.test_client(), new_publisher_token()
    pdf = big_pdf(1000)
    publish(client, token, pdf, run_id="r1")
    row = db.session.scalars(sa.select(Publication)).one()
    assert store_for(app).key_for(row.sha256) in keys(s3_client(moto.port), bucket)


def test_a_notification_attaches_the_pdf_from_the_store_and_goes_without_it_while_the_store_is_away(tmp_path, moto, bucket):
    from publish_server.notifications import worker
    from tests.portal.smtp_server import SmtpServer

    link = proxy(moto.port)
    app = make_app(tmp_path, link.port, bucket, S3_TIMEOUT_SECONDS=1)
    pdf = big_pdf(50_000)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("publish_server.notifications.compose").addHandler(handler)
    try:
        with app.app_context(), SmtpServer() as smtp:
            app.config["NBPRESS"] = {**app.config["NBPRESS"], "MAIL_URL": f"smtp://127.0.0.1:{smtp.port}", "NOTIFY_MAX_PER_MINUTE": 0}
            app.extensions.pop("nbpress.mailer", None)
            token = new_publisher_token()
            assert publish(app.test_client(), token, pdf, run_id="up", notify={"attach_pdf": True}).status_code == 201
            assert worker.run(app, once=True).sent == 1
            assert publish(app.test_client(), token, pdf + b"\n", run_id="away", notify={"attach_pdf": True}).status_code == 201
            link.kill()  # the store goes away before the second publication's mail is composed
            assert worker.run(app, once=True).sent == 1  # the mail still goes, with its link
            db.session.remove()
        attached = [[part.get_content() for part in mail.iter_attachments()] for mail in smtp.inbox.messages]
        assert attached == [[pdf], []]
        assert any("mailed without its PDF" in line for line in lines) and SECRET not in "\n".join(lines)
    finally:
        logging.getLogger("publish_server.notifications.compose").removeHandler(handler)
        link.kill()
