"""Run requests with real parts: workers claiming (and describing, and reporting runs) at once
against a served portal (threads, real HTTP, SQLite and PostgreSQL), and the requester's mail through a real SMTP server (aiosmtpd),
sent by the mail worker's loop once per request, and later when SMTP was down.
"""

from __future__ import annotations

import threading

import requests
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import Report, RunLog, RunRequest
from publish_server.notifications import worker as mail_worker
from tests.helpers import free_port
from tests.portal.run_helpers import PROFILE, bearer, claim, finish, project_token, queue, stored
from tests.portal.smtp_server import SmtpServer, text_of
from tests.portal.test_publishing import publish_ok, serve

REQUESTS, WORKERS = 24, 4


def test_workers_claiming_at_once_never_share_a_request(app, make_user):
    token = project_token("alpha", "alpha")
    alice = make_user("alice@example.com")
    queued = {queue("weekly", alice, project="alpha").public_id for _ in range(REQUESTS)}
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(WORKERS)
    failures: list[str] = []

    def work(name: str, base: str) -> None:
        mine = taken.setdefault(name, [])
        with requests.Session() as http:
            start.wait()
            while True:
                answer = http.post(f"{base}/api/v1/run-requests/claim", json={"worker": name}, headers=bearer(token), timeout=30)
                if answer.status_code == 204:
                    return
                if answer.status_code != 200:
                    failures.append(f"{name}: {answer.status_code} {answer.text[:200]}")
                    return
                mine.append(answer.json()["request"]["id"])

    with serve(app) as base:
        threads = [threading.Thread(target=work, args=(f"host-{i}:{i}", base)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not failures
    every = [public_id for ids in taken.values() for public_id in ids]
    assert sorted(every) == sorted(queued)  # each taken exactly once
    db.session.expire_all()
    owners = dict(db.session.execute(sa.select(RunRequest.public_id, RunRequest.lease_owner)).all())
    assert all(owners[public_id] == name for name, ids in taken.items() for public_id in ids)
    assert sum(1 for ids in taken.values() if ids) > 1, "one worker took everything: nothing ran at once"


def _use_smtp(app, port: int) -> None:
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "MAIL_URL": f"smtp://127.0.0.1:{port}", "PUBLIC_URL": "https://reports.example.org"}
    app.extensions.pop("nbpress.mailer", None)  # built again from the new setting


def _ended_requests(client, make_user) -> dict[str, str]:
    """One request per ending: status -> public id (alice asked for all of them)."""
    token = project_token("alpha", "alpha")
    alice = make_user("alice@example.com")
    publication = publish_ok(client, token, report="weekly", run_id="asked", variant={"region": "north"})
    ids = {}
    for status, body in [("succeeded", {"publication": publication["id"], "run_id": "asked"}),
                         ("failed", {"error_line": "cell 3: KeyError: 'region'"}), ("cancelled", {})]:
        request = queue("weekly", alice, project="alpha")
        assert claim(client, token).status_code == 200
        assert finish(client, token, request.public_id, status=status, **body).get_json() == {"status": status}
        ids[status] = request.public_id
    ids["expired"] = queue("weekly", alice, minutes=-1, project="alpha").public_id  # the worker loop's sweep ends it
    return ids


def test_the_requester_gets_one_mail_when_a_request_ends(app, client, make_user):
    ids = _ended_requests(client, make_user)
    with SmtpServer() as server:
        _use_smtp(app, server.port)
        mail_worker.run(app, once=True)
        mail_worker.run(app, once=True)  # a second pass sends nothing again
        mails = {m["Subject"]: text_of(m) for m in server.inbox.to("alice@example.com")}
    assert sorted(mails) == ["Your run of Weekly expired", "Your run of Weekly failed", "Your run of Weekly succeeded",
                             "Your run of Weekly was cancelled"]
    assert len(server.inbox.messages) == 4
    assert "https://reports.example.org/reports/weekly?variant=north" in mails["Your run of Weekly succeeded"]
    assert "cell 3: KeyError: 'region'" in mails["Your run of Weekly failed"]
    assert "no worker took this request within 30 minutes" in mails["Your run of Weekly expired"]
    assert all(stored(public_id).notified_at is not None for public_id in ids.values())


def test_the_requesters_mail_waits_while_smtp_is_down(app, client, make_user):
    ids = _ended_requests(client, make_user)
    _use_smtp(app, free_port())  # nobody listens there
    mail_worker.run(app, once=True)
    assert all(stored(public_id).notified_at is None for public_id in ids.values())
    with SmtpServer() as server:
        _use_smtp(app, server.port)
        mail_worker.run(app, once=True)
    assert len(server.inbox.to("alice@example.com")) == 4
    assert all(stored(public_id).notified_at is not None for public_id in ids.values())


def test_a_disabled_requester_gets_no_mail(app, client, make_user):
    token = project_token("alpha", "alpha")
    dave = make_user("dave@example.com", active=False)
    request = queue("weekly", dave, project="alpha")
    claim(client, token)
    finish(client, token, request.public_id, status="failed", error_line="boom")
    with SmtpServer() as server:
        _use_smtp(app, server.port)
        mail_worker.run(app, once=True)
    assert server.inbox.messages == [] and stored(request.public_id).notified_at is not None


def test_workers_describing_and_reporting_at_once_make_one_report_and_one_record(app):
    token = project_token("alpha", "alpha")
    run = {"run_id": "r-1", "status": "running", "trigger": "schedule", "started_at": "2026-12-02T06:00:00Z"}
    start = threading.Barrier(WORKERS)
    answers: list[int] = []

    def work(base: str) -> None:
        with requests.Session() as http:
            start.wait()
            answers.append(http.put(f"{base}/api/v1/reports/fresh/profile", json=PROFILE, headers=bearer(token), timeout=30).status_code)
            answers.append(http.post(f"{base}/api/v1/reports/fresh/runs", json=run, headers=bearer(token), timeout=30).status_code)

    with serve(app) as base:
        threads = [threading.Thread(target=work, args=(base,)) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert answers == [200] * 2 * WORKERS
    db.session.expire_all()
    assert db.session.scalars(sa.select(Report.project).where(Report.slug == "fresh")).all() == ["alpha"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RunLog)) == 1
