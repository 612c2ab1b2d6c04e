"""Canaries through the artifacts past the run folder (see tests/test_canaries.py for the run itself).

1. A run whose spec has a ``notify.summary`` over the secret parameters and a metric record that
   holds them, published (`nbpress publish`, HTTP) to a live portal that keeps its files in a real
   S3 server (moto, its own process) and mails its readers through a real SMTP server (aiosmtpd):
   no canary in the publication's summary, the ``mail_jobs`` rows or any other row, the mails
   (headers, bodies, attachments), the S3 objects (keys, metadata, bytes) or the portal's logs.
2. An SMTP server refusing the login (535): the queue's ``last_error`` and the log line hold its
   answer, never ``MAIL_PASSWORD``.
3. Sign-in, code, password-reset and withdrawal attempts against a portal whose limits live in a
   real redis-server: no e-mail address (in clear or as its bare SHA-256), password, code,
   token or reset link in a Redis key or value, nor in the portal's logs. The client's IP is in
   the per-IP keys: that is what a per-IP limit counts (docs/security-model.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets as pysecrets
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
import yaml
from flask_migrate import upgrade

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import MailJob, User
from publish_server.notifications import worker
from publish_server.publishing import create_publisher_token
from publish_server.signin.passwords import Passwords
from tests.conftest import make_notebook
from tests.portal.conftest import TEST_PASSWORD, base_config, last_code
from tests.portal.notify_helpers import publish, publisher, seed_readers
from tests.portal.redis_server import REDIS_SERVER, RedisServer
from tests.portal.s3_server import REGION, moto_server, s3_client
from tests.portal.smtp_server import SMTP_USER, SmtpServer, make_pki
from tests.portal.test_publishing import serve
from tests.test_canaries import LEAKY, PARAMS, Canaries, leaks, nbpress, said

READER = "reader.canary@example.org"
SUMMARY = "{{ params.db_url }} {{ params.api_token }} {{ params.db_password }} {{ metrics.conn }} n={{ metrics.n }}"
RECORDED = LEAKY + '\ntk.metric("conn", f"{db_url} {api_token} {db_password}")'


@contextmanager
def portal_logs() -> Iterator[list[str]]:
    """Every log line the process writes at INFO and above while in the block (the portal's,
    werkzeug's access lines, botocore's), formatted with their arguments."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _add_user(app, email: str) -> None:
    with app.app_context():
        hashed = Passwords.from_settings(app.config["NBPRESS"]).hash(TEST_PASSWORD)
        db.session.add(User(email=email, display_name="Reader", password_hash=hashed, role="recipient"))
        db.session.commit()


def _mail_files(messages: list[EmailMessage], folder: Path) -> Path:
    """Each mail as sent (bytes) and each of its parts decoded (the PDF as a .pdf) for :func:`leaks`."""
    folder.mkdir()
    for i, message in enumerate(messages):
        (folder / f"{i}.eml").write_bytes(message.as_bytes())
        for j, part in enumerate(message.walk()):
            payload = part.get_payload(decode=True)
            if payload is not None:
                (folder / f"{i}-{j}.{part.get_content_subtype()}").write_bytes(payload)
    return folder


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def moto():
    server = moto_server()
    yield server
    server.kill()


@pytest.fixture
def s3_portal(tmp_path, moto):
    """A portal storing its files in a fresh bucket; its publisher token and the S3 secret key."""
    bucket, s3_secret = f"canary-{pysecrets.token_hex(4)}", f"s3-secret-{pysecrets.token_hex(12)}"
    s3_client(moto.port).create_bucket(Bucket=bucket)
    app = create_app(base_config(FILES_URL=f"s3://{bucket}/reports", S3_ENDPOINT_URL=f"http://127.0.0.1:{moto.port}",
                                 S3_REGION=REGION, S3_ACCESS_KEY_ID="portal", S3_SECRET_ACCESS_KEY=s3_secret),
                     instance_path=tmp_path / "portal")
    with app.app_context():
        upgrade()
        _row, token = create_publisher_token("toolkit")
        db.session.commit()
    _add_user(app, READER)
    yield app, bucket, token, s3_secret
    with app.app_context():
        db.engine.dispose()


def test_the_summary_mail_jobs_mails_s3_objects_and_logs_keep_no_canary(project, tmp_path, moto, s3_portal):
    app, bucket, token, s3_secret = s3_portal
    canaries = Canaries()
    make_notebook(project.notebooks_dir / "leaky.ipynb", PARAMS, RECORDED)
    (project.notebooks_dir / "leaky.yml").write_text(yaml.safe_dump({
        "audience": {"users": [READER]}, "notify": {"summary": SUMMARY, "attach_pdf": True}}))
    result = nbpress("run", "leaky", *canaries.args(), cwd=project.root, env=canaries.env)
    assert result.returncode == 0, result.stderr
    [run_dir] = (project.runs_dir / "leaky").iterdir()

    with portal_logs() as logs:
        with serve(app) as url:
            published = nbpress("publish", str(run_dir), "--portal", url, cwd=project.root,
                                env={"NBPRESS_PUBLISH_TOKEN": token})
        assert published.returncode == 0, published.stderr
        with SmtpServer() as smtp, app.app_context():
            app.config["NBPRESS"] = {**app.config["NBPRESS"], "MAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
                                     "NOTIFY_MAX_PER_MINUTE": 0}
            app.extensions.pop("nbpress.mailer", None)
            assert worker.run(app, once=True).sent == 1
            rows = {table.name: [repr(row) for row in db.session.execute(sa.select(table)).all()]
                    for table in db.metadata.sorted_tables}
            db.session.remove()

    values = canaries.values
    assert len(rows["mail_jobs"]) == 1 and "'sent'" in rows["mail_jobs"][0]
    assert [v for v in values if v in "\n".join(sum(rows.values(), []))] == []
    assert leaks(_mail_files(smtp.inbox.messages, tmp_path / "mails"), values + [s3_secret, token]) == []
    # The summary was rendered over the masked parameters and the masked record, and it is what the mail says.
    summary = f"{canaries.masked_url} *** *** {canaries.masked_url} *** *** n=1"
    assert any(summary in row for row in rows["publications"]), rows["publications"]
    [mail] = smtp.inbox.messages
    assert summary in mail.get_body(preferencelist=("plain",)).get_content()
    [pdf] = mail.iter_attachments()  # read from the S3 store (attach_pdf)
    assert pdf.get_content() == (run_dir / "report.pdf").read_bytes()

    observer = s3_client(moto.port)
    listed = observer.list_objects_v2(Bucket=bucket)["Contents"]
    assert len(listed) == 1 and re.fullmatch(r"reports/[0-9a-f]{2}/[0-9a-f]{64}\.pdf", listed[0]["Key"])
    head = observer.head_object(Bucket=bucket, Key=listed[0]["Key"])
    stored = repr({k: v for k, v in head.items() if k != "ResponseMetadata"}) + repr(head["ResponseMetadata"]["HTTPHeaders"])
    assert [v for v in values + [s3_secret, token] if v in stored] == []
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "object.pdf").write_bytes(observer.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read())
    assert leaks(objects, values) == []

    assert any("werkzeug" in line and "POST /api/v1/publications" in line for line in logs)  # the capture works
    assert [v for v in values + [s3_secret, token] if any(v in line for line in logs)] == []
    assert said(published, values + [token]) == []


def test_a_refused_smtp_login_leaves_no_password_in_mail_jobs_or_the_logs(tmp_path, pki):
    """The queue's ``last_error`` holds the SMTP server's answer, and the log line says why mails
    wait: neither may hold MAIL_PASSWORD (here a wrong one the server refuses with 535)."""
    password = f"smtp-canary-{pysecrets.token_hex(8)}"
    with SmtpServer("starttls", cert=pki.cert, key=pki.key, auth=True) as smtp:
        app = create_app(base_config(MAIL_URL=f"smtp+starttls://127.0.0.1:{smtp.port}", MAIL_USERNAME=SMTP_USER,
                                     MAIL_PASSWORD=password, MAIL_CA_FILE=str(pki.ca), MAIL_TIMEOUT_SECONDS=5,
                                     NOTIFY_MAX_PER_MINUTE=0), instance_path=tmp_path / "instance")
        with app.app_context():
            upgrade()
            seed_readers(Passwords.from_settings(app.config["NBPRESS"]), 2)
            publish(app.test_client(), publisher(app), summary="Orders up 4 %")
            with portal_logs() as logs:
                totals = worker.run(app, once=True)
            errors = db.session.scalars(sa.select(MailJob.last_error)).all()
            db.session.remove()
            db.engine.dispose()
    assert totals.sent == 0 and smtp.inbox.messages == []
    assert len(errors) == 2 and all("535" in e for e in errors), errors  # the server's refusal is recorded ...
    assert any("SMTP unavailable" in line for line in logs)
    assert [e for e in errors if password in e] == [] and [line for line in logs if password in line] == []  # ... its password is not


# --- the rate limits' keys in Redis ---------------------------------------------------------------


def _redis_dump(url: str) -> str:
    """Every key in the limiter's Redis with its value, one per line."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return "\n".join(f"{key!r} = {client.get(key)!r}" for key in sorted(client.keys("*")))
    finally:
        client.close()


def _form_cookie(client, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, name
    return cookie.value


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server; `make test` installs it)")
def test_the_limits_keep_no_address_token_or_code_in_redis_nor_the_logs(tmp_path):
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    address, wrong_password, bearer = "ann.canary@example.org", f"wrong-{pysecrets.token_hex(8)}", f"tok-{pysecrets.token_hex(16)}"
    try:
        app = create_app(base_config(RATELIMIT_STORAGE_URL=redis_server.url), instance_path=tmp_path / "instance")
        with app.app_context():
            upgrade()
        _add_user(app, address)
        client = app.test_client()
        with portal_logs() as logs, app.app_context():
            client.get("/login")
            form = {"email": address, "login_csrf": _form_cookie(client, "login_csrf")}
            assert client.post("/login", data={**form, "password": wrong_password}).status_code == 401
            assert client.post("/api/v1/auth/login", json={"email": address, "password": wrong_password}).status_code == 401
            started = client.post("/api/v1/auth/login", json={"email": address, "password": TEST_PASSWORD}).get_json()
            code = last_code(app, address)
            wrong_code = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
            assert client.post("/api/v1/auth/verify", json={"challenge_id": started["challenge_id"],
                                                            "client_secret": started["client_secret"], "code": wrong_code}).status_code == 401
            client.get("/password/forgot")
            csrf = _form_cookie(client, "reset_csrf")
            asked = client.post("/password/forgot", data={"email": address, "reset_csrf": csrf})
            asked.close()  # sends the mail, as a WSGI server does after the answer
            assert asked.status_code == 200
            mail = app.extensions["nbpress.mailer"].sent[-1].get_body(preferencelist=("plain",)).get_content()
            link = re.search(r"/password/reset/([A-Za-z0-9_-]+)", mail)
            assert link, "no reset link in the mail"
            reset_token = link.group(1)
            refused = client.post("/password/reset", data={"token": reset_token, "reset_csrf": csrf,
                                                           "new_password": "a", "new_password_again": "b"})
            assert refused.status_code >= 400
            assert client.post("/api/v1/publications/nothing/withdraw", json={"reason": "r"},
                               headers={"Authorization": f"Bearer {bearer}"}).status_code == 401
            stored = _redis_dump(redis_server.url)
        hidden = [address, address.split("@")[0], hashlib.sha256(address.encode()).hexdigest(), wrong_password,
                  TEST_PASSWORD, started["client_secret"], code, wrong_code, reset_token, bearer, redis_server.password]
        assert "127.0.0.1" in stored and "failures:" in stored and "reset-email:" in stored  # every kind of key is there
        assert [v for v in hidden if v in stored] == []
        assert [v for v in hidden[3:] if any(v in line for line in logs)] == []
    finally:
        redis_server.stop()
