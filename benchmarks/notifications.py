"""Notifying 10,000 recipients: from the publish request to the last mail received by aiosmtpd.

    python -m benchmarks.notifications [--recipients 10000] [--repeat 3]

What runs, on loopback in a temporary folder removed at the end:

* a portal instance on SQLite seeded with N recipients in one group granted the report (bulk
  inserts, one password hash), and a publisher token;
* aiosmtpd in this process, counting the mails it accepts (250 after DATA);
* per repetition: a new run is published through the real API (``POST /api/v1/publications``,
  in-process test client: the publish transaction queues the N jobs), then one real
  ``nbpress portal mail-worker --once`` process (``NOTIFY_MAX_PER_MINUTE=0``: the cap is what an
  operator sets, not the machine's speed) sends them; timed until aiosmtpd has all N;
* the baseline in the same run: raw smtplib sending N ready-made messages over one connection.

Printed: the median of the repetitions (and the queueing time alone), the raw baseline and the
ratio. Goal: under a minute for 10,000.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import secrets
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60


class Counter:
    def __init__(self) -> None:
        self.count, self.lock = 0, threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _seed(app, n: int) -> str:
    import sqlalchemy as sa

    from publish_server.extensions import db
    from publish_server.models import Grant, Group, Membership, Report, User
    from publish_server.publishing import create_publisher_token
    from publish_server.signin.passwords import Passwords

    password_hash = Passwords.from_settings(app.config["NBPRESS"]).hash("benchmark recipients never sign in")
    emails = [f"r{i:05d}@example.org" for i in range(n)]
    db.session.execute(sa.insert(User), [{"email": e, "display_name": e[:6], "password_hash": password_hash,
                                          "public_id": hashlib.sha256(e.encode()).hexdigest()[:22]} for e in emails])
    group, report = Group(name="readers"), Report(slug="weekly", title="Weekly")
    db.session.add_all([group, report])
    db.session.flush()
    ids = db.session.scalars(sa.select(User.id)).all()
    db.session.execute(sa.insert(Membership), [{"user_id": i, "group_id": group.id} for i in ids])
    db.session.add(Grant(report_id=report.id, group_id=group.id))
    _, token = create_publisher_token("bench")
    db.session.commit()
    return token


def _publish(client, token: str, run: int) -> float:
    pdf = b"%PDF-1.4\n%bench " + str(run).encode() + b"\n%%EOF\n"
    body = {"report": "weekly", "run_id": f"run-{run}", "sha256": hashlib.sha256(pdf).hexdigest(), "period_label": f"2026-W{run:02d}",
            "summary": "10,000 recipients benchmark"}
    started = time.perf_counter()
    response = client.post("/api/v1/publications", headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data",
                           data={"metadata": json.dumps(body), "file": (io.BytesIO(pdf), "r.pdf")})
    assert response.status_code == 201, response.get_json()
    return time.perf_counter() - started


def _raw(port: int, n: int, counter: Counter) -> float:
    messages = []
    for i in range(n):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "nbpress@localhost", f"r{i:05d}@example.org", "New: Weekly"
        message.set_content("A new report is on Notebook Press.\n" * 8)
        messages.append(message)
    start_count, started = counter.count, time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for message in messages:
            smtp.send_message(message)
    assert counter.count - start_count == n
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nbpress-bench-notify-"))
    counter, port = Counter(), _free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    env = {**os.environ, "NBPRESS_INSTANCE": str(folder / "instance"), "NBPRESS_SECRET_KEY": secrets.token_urlsafe(40),
           "NBPRESS_JWT_SECRET": secrets.token_urlsafe(40), "NBPRESS_MAIL_URL": f"smtp://127.0.0.1:{port}",
           "NBPRESS_NOTIFY_MAX_PER_MINUTE": "0", "NBPRESS_ARGON2_MEMORY_KIB": "64", "NBPRESS_ARGON2_TIME_COST": "1",
           "PYTHONPATH": str(ROOT)}
    os.environ.update({k: v for k, v in env.items() if k.startswith("NBPRESS_")})
    from flask_migrate import upgrade

    from publish_server import create_app

    controller.start()
    try:
        app = create_app(instance_path=folder / "instance")
        with app.app_context():
            upgrade()
            token = _seed(app, args.recipients)
        client = app.test_client()
        runs, queueing = [], []
        for run in range(1, args.repeat + 1):
            before = counter.count
            started = time.perf_counter()
            with app.app_context():
                queueing.append(_publish(client, token, run))
            worker = subprocess.run([sys.executable, "-m", "publish_server.admin", "mail-worker", "--once"], env=env,
                                    capture_output=True, text=True, timeout=1800)
            assert worker.returncode == 0, worker.stderr[-2000:]
            while counter.count - before < args.recipients:
                time.sleep(0.01)
            runs.append(time.perf_counter() - started)
            assert counter.count - before == args.recipients, (counter.count - before, worker.stderr[-500:])
            print(f"run {run}: {runs[-1]:.1f} s (queueing {queueing[-1] * 1000:.0f} ms); worker: {worker.stderr.strip().splitlines()[-1]}")
        raw = _raw(port, args.recipients, counter)
    finally:
        controller.stop()
        shutil.rmtree(folder, ignore_errors=True)
    median = statistics.median(runs)
    print(f"notifications, {args.recipients:,} recipients, publish -> all received: median {median:.1f} s of {len(runs)} "
          f"({args.recipients / median:,.0f} mails/s; queueing alone {statistics.median(queueing) * 1000:.0f} ms)")
    print(f"raw smtplib, the same number over one connection: {raw:.1f} s; ratio {median / raw:.2f}x")
    print(f"goal: under {GOAL_SECONDS} s: {'met' if median < GOAL_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
