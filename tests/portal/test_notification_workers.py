"""The mail worker as real processes: killed mid-batch and restarted, and two at once.

Each recipient must get exactly one mail. The worker is ``python -m publish_server.admin
mail-worker`` (what ``nbpress portal mail-worker`` runs) on a SQLite file or the test PostgreSQL;
the SMTP server is aiosmtpd on loopback, in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import MailJob, utcnow
from tests.helpers import free_port, wait_for, wait_until_listening
from tests.portal.conftest import make_pdf
from tests.portal.notify_helpers import StallingInbox, counts, publish, publisher, seed_readers
from tests.portal.smtp_server import Inbox, SmtpServer, text_of

N = 300  # processes on both databases: enough for several batches; the 1,000-recipient run is in test_notifications.py


def _worker(app, smtp_port: int, *args: str, once: bool = True) -> subprocess.Popen:
    settings = app.config["NBPRESS"]
    env = {**os.environ, "NBPRESS_INSTANCE": app.instance_path, "NBPRESS_SECRET_KEY": settings["SECRET_KEY"],
           "NBPRESS_JWT_SECRET": settings["JWT_SECRET"], "NBPRESS_DATABASE_URL": settings["DATABASE_URL"],
           "NBPRESS_MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "NBPRESS_NOTIFY_MAX_PER_MINUTE": "0",
           "NBPRESS_COOKIE_SECURE": "false"}
    return subprocess.Popen([sys.executable, "-m", "publish_server.admin", "mail-worker", *(["--once"] if once else []), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _queued(app, client, passwords) -> list[str]:
    emails = seed_readers(passwords, N)
    publish(client, publisher(app))
    db.session.remove()
    return emails


def test_a_worker_killed_mid_batch_and_restarted_sends_each_mail_exactly_once(app, client, passwords):
    emails = _queued(app, client, passwords)
    inbox = StallingInbox(stall_at=150)  # the 150th mail: 149 are through, the second batch is half done
    server = SmtpServer()
    server.inbox = server.controller.handler = inbox
    with server:
        first = _worker(app, server.port, "--lease", "3")
        try:
            assert inbox.stalled.wait(60), "the worker never reached the 150th mail"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            inbox.release.set()
            first.kill()
        assert len(inbox.messages) == 149
        leased = db.session.scalar(sa.select(sa.func.count()).where(MailJob.status == "sending"))
        assert leased > 0  # the killed worker's batch is still leased to it ...
        second = _worker(app, server.port, "--lease", "3")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        db.session.remove()
        lease_end = db.session.scalar(sa.select(sa.func.max(MailJob.lease_until)).where(MailJob.status == "sending"))
        if lease_end is not None:  # ... until its lease runs out; then a worker takes them
            time.sleep(max(0.0, (lease_end - utcnow()).total_seconds()) + 0.2)
            again = _worker(app, server.port)
            assert again.wait(120) == 0
    assert counts(inbox) == {e: 1 for e in emails}


class GateInbox(Inbox):
    """Holds every RCPT until two senders have connected: both workers surely work at once."""

    def __init__(self):
        super().__init__()
        self.peers: set = set()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.peers.add(session.peer)
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for _ in range(1200):  # at most 60 s
            if len(self.peers) >= 2:
                break
            await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_two_workers_at_once_send_each_mail_exactly_once(app, client, passwords):
    emails = _queued(app, client, passwords)
    server = SmtpServer()
    server.inbox = server.controller.handler = GateInbox()
    with server:
        workers = [_worker(app, server.port, "--batch", "50") for _ in range(2)]
        results = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], results
    sent = [int(err.split("notifications: sent ")[1].split(",")[0]) for _, err in results]
    assert sum(sent) == N and min(sent) > 0, sent  # both took part
    assert counts(server.inbox) == {e: 1 for e in emails}
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).where(MailJob.status == "sent")) == N


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_dev_sends_notifications_from_its_own_thread(app, passwords, tmp_path):
    """A publish over real HTTP to `nbpress portal serve --dev`: the mail arrives with no worker started."""
    emails = seed_readers(passwords, 3)
    token = publisher(app)
    db.session.remove()
    port = free_port()
    with SmtpServer() as server:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}, "NBPRESS_INSTANCE": app.instance_path,
               "NBPRESS_MAIL_URL": f"smtp://127.0.0.1:{server.port}"}
        portal = subprocess.Popen([sys.executable, "-m", "publish_server.admin", "serve", "--dev", "--port", str(port)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until_listening(port, portal, name="the dev server")
            pdf = make_pdf(1, marker="dev")
            meta = {"report": "weekly", "run_id": "dev-1", "sha256": hashlib.sha256(pdf).hexdigest(), "period_label": "2026-W49"}
            answer = requests.post(f"http://127.0.0.1:{port}/api/v1/publications", headers={"Authorization": f"Bearer {token}"},
                                   files={"metadata": (None, json.dumps(meta)), "file": ("r.pdf", pdf)}, timeout=30)
            assert answer.status_code == 201, answer.text
            wait_for(lambda: len(server.inbox.messages) >= 3, timeout=30, what="three notification mails", process=portal)
        finally:
            portal.terminate()
            portal.wait(30)
    assert counts(server.inbox) == {e: 1 for e in emails}
    assert f"http://127.0.0.1:{port}/reports/weekly" in text_of(server.inbox.messages[0])


class SlowInbox(Inbox):
    """20 ms per mail (``delay``): a worker is surely mid-batch when the test signals it."""

    delay = 0.02

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_finishes_the_mail_in_hand_and_gives_the_batch_back(app, client, passwords):
    emails = _queued(app, client, passwords)
    server = SmtpServer()
    server.inbox = server.controller.handler = SlowInbox()
    with server:
        running = _worker(app, server.port, "--poll", "0.2", "--batch", str(N), once=False)  # one batch; runs on until signalled
        wait_for(lambda: len(server.inbox.messages) >= 20, timeout=60, what="20 mails", process=running)
        running.send_signal(signal.SIGTERM)
        _, err = running.communicate(timeout=30)
        assert running.returncode == 0, err
        statuses = dict(db.session.execute(sa.select(MailJob.status, sa.func.count()).group_by(MailJob.status)).all())
        assert "sending" not in statuses and statuses["sent"] == len(server.inbox.messages) < N  # nothing left leased
        server.inbox.delay = 0
        assert _worker(app, server.port).wait(120) == 0  # the rest, at once: no lease to wait for
    assert counts(server.inbox) == {e: 1 for e in emails}
