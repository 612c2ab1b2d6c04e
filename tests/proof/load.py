"""A bounded load test of the portal on loopback: gunicorn (2 workers), recipients and a publisher.

What runs (started and stopped here; server start-up code is :mod:`benchmarks.portal`'s):

* an instance seeded in-process (:func:`seed_instance`): N recipients in group ``readers``, the
  report ``weekly_statistics`` granted to that group, one publication, a publisher token; the
  database is SQLite or a PostgreSQL URL; mail goes to the development file outbox;
* ``gunicorn -w 2`` (gthread) serving it (:func:`portal`);
* N recipient threads (:func:`run_load`). Each signs in through the real API: password, then the
  emailed code read from the outbox, then verify (a device token comes back); then, until the
  time is up, it lists, downloads one of the listed publications and checks its SHA-256 against
  the list, and every tenth round signs in again with its device token (no code: a trusted
  device). Meanwhile a publisher thread posts new publications, spread over the time.

Every status other than the expected one, any exception and any SHA-256 mismatch is an error;
after the run every downloaded id's SHA-256 is compared with what was published. The
limiter counts failed sign-in steps only, so a load without failures is not throttled: no
security setting is changed for the test (a 429 would count as an error).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import random
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import requests

from benchmarks.portal import make_pdf, start_portal, stop, wait_for_port
from tests.helpers import free_port

__all__ = ["LoadResult", "Served", "code_from_outbox", "seed_instance", "portal", "run_load"]

PASSWORD = "load test password " + "x" * 8
REPORT = "weekly_statistics"


def _email(i: int) -> str:
    return f"reader{i}@example.org"


def seed_instance(instance: Path, users: int, *, database_url: str = "",
                  settings: dict[str, object] | None = None) -> tuple[str, dict[str, str]]:
    """Write portal.toml (``settings`` added to or replacing the defaults) and seed the database and
    the configured file store; returns the publisher token and {public_id: sha256}."""
    from flask_migrate import upgrade

    from publish_server import create_app
    from publish_server.extensions import db
    from publish_server.models import Grant, Group, Membership, Publication, Report, User
    from publish_server.signin.passwords import Passwords
    from publish_server.publishing import create_publisher_token
    from publish_server.storage import store_for

    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    # RATELIMIT_PER_PROCESS: a test bench on one machine; gunicorn's 2 workers each count on their own.
    values: dict[str, object] = {"SECRET_KEY": secrets.token_urlsafe(48), "JWT_SECRET": secrets.token_urlsafe(48),
                                 "COOKIE_SECURE": False, "MAIL_URL": "file:outbox", "RATELIMIT_PER_PROCESS": True}
    if database_url:
        values["DATABASE_URL"] = database_url
    values.update(settings or {})
    (instance / "portal.toml").write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    app = create_app(instance_path=instance)
    with app.app_context():
        upgrade()
        pdf = make_pdf(60_000)
        stored = store_for(app).put(io.BytesIO(pdf), limit=len(pdf))
        password_hash = Passwords.from_settings(app.config["NBPRESS"]).hash(PASSWORD)
        group, report = Group(name="readers"), Report(slug=REPORT, title="Weekly Statistics")
        db.session.add_all([group, report])
        db.session.flush()
        for i in range(users):
            user = User(email=_email(i), display_name=f"Reader {i}", password_hash=password_hash)
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, group_id=group.id))
        publication = Publication(report_id=report.id, version=1, run_id="seed-1", period_label="2026-W46",
                                  sha256=stored.sha256, size=stored.size, pages=1)
        db.session.add_all([publication, Grant(report_id=report.id, group_id=group.id)])
        _row, token = create_publisher_token("load-publisher")
        db.session.commit()
        known = {publication.public_id: stored.sha256}
        db.session.remove()
        db.engine.dispose()
    return token, known


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    pid: int  # the gunicorn master

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return {int(pid) for pid in children.read_text().split()} if children.exists() else set()

    def wait_for_workers(self, count: int, timeout: float = 30) -> set[int]:
        deadline = time.monotonic() + timeout
        while len(found := self.worker_pids()) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return found


@contextmanager
def portal(instance: Path, *, workers: int = 2, threads: int = 4) -> Iterator[Served]:
    """gunicorn serving ``instance`` on a free loopback port (stopped on the way out)."""
    port = free_port()
    process = start_portal(instance, port, workers, threads, instance / "gunicorn.log")
    try:
        wait_for_port(port, process, "gunicorn")
        yield Served(f"http://127.0.0.1:{port}", process.pid)
    finally:
        stop(process)


@dataclass
class LoadResult:
    database: str
    workers: int
    recipients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    downloads: dict[str, set[str]] = field(default_factory=dict)  # public_id -> SHA-256 of downloaded bytes
    published: dict[str, str] = field(default_factory=dict)  # public_id -> SHA-256 the publisher sent
    sign_ins: int = 0
    began: float | None = None  # perf_counter when every recipient had signed in: the timed window starts
    setup_latencies: list[float] = field(default_factory=list)  # the first sign-ins (password + code), before it
    download_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ms(self, q: float, latencies: list[float] | None = None) -> float:
        ordered = sorted(self.latencies if latencies is None else latencies)
        if not ordered:
            return float("nan")
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    def figures(self, note: str = "") -> dict:
        return {
            "database": self.database, "workers": self.workers, "recipients": self.recipients,
            "seconds": round(self.seconds, 1), "requests": len(self.latencies),
            "requests_per_s": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": self.ms(0.50), "p95_ms": self.ms(0.95), "p99_ms": self.ms(0.99),
            "errors": len(self.errors), "sign_ins": self.sign_ins,
            "first_sign_in_p95_ms": self.ms(0.95, self.setup_latencies),
            "downloads": self.download_count, "downloads_checked": self.download_count,
            "publications_downloaded": len(self.downloads),
            "published_during_load": len(self.published), "note": note,
            "error_sample": sorted(set(self.errors))[:5],
        }


class _Client:
    """One recipient: a keep-alive session that times every request."""

    def __init__(self, base: str, result: LoadResult):
        self.base, self.result = base, result
        self.http = requests.Session()

    def call(self, method: str, path: str, expect: int | tuple[int, ...], **kwargs) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, timeout=30, **kwargs)
        except requests.RequestException as exc:
            with self.result.lock:
                self.result.errors.append(f"{method} {path.split('?')[0]}: {type(exc).__name__}")
            return None
        elapsed = time.perf_counter() - started
        with self.result.lock:
            timed = self.result.began is not None and started >= self.result.began
            (self.result.latencies if timed else self.result.setup_latencies).append(elapsed)
            if response.status_code not in (expect if isinstance(expect, tuple) else (expect,)):
                self.result.errors.append(f"{method} {path.split('?')[0]}: {response.status_code}")
                return None
        return response


def code_from_outbox(outbox: Path, address: str, after: set[Path], deadline: float) -> str:
    """The code in the newest outbox message to ``address`` written after ``after`` was listed."""
    while time.monotonic() < deadline:
        for path in sorted(set(outbox.glob("*.eml")) - after):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address in str(message["To"]):
                text = message.get_body(preferencelist=("plain",)).get_content()
                found = re.search(r"^\s+(\d{6,10})\s*$", text, re.MULTILINE)
                if found:
                    return found.group(1)
        time.sleep(0.05)
    raise TimeoutError(f"no code for {address} in the outbox")


def _recipient(i: int, base: str, outbox: Path, result: LoadResult, clock: dict[str, float], start: threading.Barrier) -> None:
    client, address = _Client(base, result), _email(i)
    verified = None
    try:
        seen = set(outbox.glob("*.eml"))
        answer = client.call("POST", "/api/v1/auth/login", 202, json={"email": address, "password": PASSWORD})
        if answer is not None:
            started = answer.json()
            code = code_from_outbox(outbox, address, seen, time.monotonic() + 30)
            verified = client.call("POST", "/api/v1/auth/verify", 200, json={
                "challenge_id": started["challenge_id"], "client_secret": started["client_secret"], "code": code})
    except TimeoutError as exc:
        with result.lock:
            result.errors.append(str(exc))
    finally:
        start.wait()  # every recipient has signed in (or failed to) before the clock starts
    if verified is None:
        return
    body = verified.json()
    headers, device = {"Authorization": f"Bearer {body['access_token']}"}, body["device_token"]
    rounds = 0
    while time.monotonic() < clock["stop"]:
        rounds += 1
        if rounds % 10 == 0:  # sign in again on the trusted device: no code this time
            again = client.call("POST", "/api/v1/auth/login", 200, json={"email": address, "password": PASSWORD, "device_token": device})
            if again is not None:
                headers = {"Authorization": f"Bearer {again.json()['access_token']}"}
                with result.lock:
                    result.sign_ins += 1
        listing = client.call("GET", "/api/v1/publications?limit=50", 200, headers=headers)
        if listing is None:
            continue
        choice = random.choice(listing.json()["publications"])
        download = client.call("GET", choice["download_url"], 200, headers=headers)
        if download is None:
            continue
        digest = hashlib.sha256(download.content).hexdigest()
        with result.lock:
            result.download_count += 1
            result.downloads.setdefault(choice["id"], set()).add(digest)
            if digest != choice["sha256"]:
                result.errors.append(f"download {choice['id']}: SHA-256 differs from the listed one")


def _publisher(base: str, token: str, count: int, result: LoadResult, stop_at: float) -> None:
    client = _Client(base, result)
    # A connection per post: it waits seconds between posts, longer than gunicorn keeps an idle
    # connection open, and a reused connection closed at that moment is the client's race, not the portal's.
    client.http.headers["Connection"] = "close"
    gap = max(0.1, (stop_at - time.monotonic()) / (count + 1))
    for n in range(count):
        time.sleep(gap)
        pdf = make_pdf(60_000)
        sha = hashlib.sha256(pdf).hexdigest()
        metadata = {"report": REPORT, "run_id": f"load-{n}-{secrets.token_hex(3)}", "sha256": sha, "period_label": f"load {n}", "pages": 1}
        for attempt in range(3):  # as the toolkit does: a 5xx or a lost connection is retried (same run: idempotent)
            answer = client.call("POST", "/api/v1/publications", (201, 200) if attempt else 201, headers={"Authorization": f"Bearer {token}"},
                                 files={"file": ("report.pdf", pdf, "application/pdf"), "metadata": (None, json.dumps(metadata))})
            if answer is not None:
                break
            time.sleep(1 + attempt)
        if answer is not None:
            with result.lock:
                result.published[answer.json()["id"]] = sha


def run_load(base: str, instance: Path, token: str, known: dict[str, str], *, database: str, users: int, seconds: float,
             publications: int, workers: int = 2, events: tuple[tuple[float, Callable[[], None]], ...] = ()) -> LoadResult:
    """Run the load against ``base``; returns the figures with every error found.

    ``events``: (seconds into the timed window, action) pairs, e.g. a fault to inject.
    """
    result = LoadResult(database=database, workers=workers, recipients=users)
    outbox = instance / "outbox"
    clock: dict[str, float] = {}

    def begin() -> None:  # run once, when every recipient has signed in
        clock["began"] = time.monotonic()
        clock["stop"] = clock["began"] + seconds
        result.began = time.perf_counter()

    start = threading.Barrier(users + 1, action=begin)
    threads = [threading.Thread(target=_recipient, args=(i, base, outbox, result, clock, start), daemon=True) for i in range(users)]
    for thread in threads:
        thread.start()
    start.wait(timeout=180)
    timers = [threading.Timer(offset, action) for offset, action in events]
    for timer in timers:
        timer.start()
    publisher = threading.Thread(target=_publisher, args=(base, token, publications, result, clock["stop"]), daemon=True)
    publisher.start()
    for thread in threads + [publisher] + timers:
        thread.join(timeout=seconds + 120)
    result.seconds = time.monotonic() - clock["began"]
    truth = {**known, **result.published}
    for public_id, digests in result.downloads.items():
        if public_id not in truth:
            result.errors.append(f"download {public_id}: a publication nobody was told was published")
        elif digests != {truth[public_id]}:
            result.errors.append(f"download {public_id}: SHA-256 differs from the published one")
    return result

