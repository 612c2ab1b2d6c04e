"""CPU seconds per operation, for docs/capacity.md: sign-in, download, publication, notification
mail, report run; and bytes per database row, per Redis limit key and per PDF.

    python -m benchmarks.capacity [--signins 30] [--downloads 600] [--publications 10] [--readers 500]
                                  [--batch 4] [--skip-run] [--json benchmarks/results/capacity.json]

CPU time, not wall time: the machine is shared, so a request's wall time says more about the
neighbours than about the portal, while the CPU seconds its process burns are its own. What runs,
on loopback in a temporary folder removed at the end:

* a real portal process (``gunicorn -w 1 --threads 4``, benchmarks/portal.py's ``start_portal``)
  on a SQLite instance at the production Argon2 cost (19 MiB, 2 passes); its process group's
  CPU (/proc) is read before and after each phase and divided by the operations done:
  - sign-in, password step: ``GET /login`` + ``POST /login`` from a new device (Argon2id verify,
    challenge row, the code mailed to the development outbox);
  - sign-in, code step: ``POST /login/verify`` (device trusted, tokens issued);
  - sign-in from a trusted device: the password step only (what most weekly sign-ins are);
  - download: ``GET /p/<id>/download`` with the access cookie (JWT, deny-list, grant query,
    audit row, sendfile of the PDF);
  - publication: ``POST /api/v1/publications`` with a PDF (upload, checks, store, one mail job
    per reader queued in the same transaction);
* ``nbpress portal mail-worker --once`` as its own process sending the queued mails to aiosmtpd
  in this process (its CPU from ``getrusage(RUSAGE_CHILDREN)``);
* ``nbpress run weekly_statistics`` on a copy of the demo (benchmarks/measure.py: CPU of the
  whole process tree, kernel included) and the size of its PDF, then a ``--grid`` batch of
  ``--batch`` members (CPU per member, kernels forked from a warm template); ``--skip-run``
  leaves both out;
* bytes per row of the tables that grow (SQLite's ``dbstat``: the payload of the table and its
  indexes) and, when Debian's ``redis-server`` is installed, Redis memory per limit key.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import hashlib
import io
import json
import os
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .portal import free_port, group_cpu_seconds, make_pdf, start_portal, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "capacity benchmark password 2026"
REPORT = "weekly_statistics"
GROWING = ("audit_events", "login_challenges", "devices", "mail_jobs", "publications", "users", "memberships")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the instance --------------------------------------------------------------------------------


def seed(instance: Path, signers: int, readers: int, pdf: bytes) -> tuple[str, str]:
    """``signers`` users who sign in and ``readers`` who only get mail, all in one group granted
    the report; one publication to download; a publisher token. Returns (public id, token)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from publish_server import create_app
    from publish_server.extensions import db
    from publish_server.models import Grant, Group, Membership, Publication, Report, User
    from publish_server.publishing import create_publisher_token
    from publish_server.signin.passwords import Passwords
    from publish_server.storage import store_for

    app = create_app(instance_path=instance)
    with app.app_context():
        upgrade()
        password_hash = Passwords.from_settings(app.config["NBPRESS"]).hash(PASSWORD)  # one production-cost hash
        emails = [signer(i) for i in range(signers)] + [f"reader{i:05d}@example.org" for i in range(readers)]
        db.session.execute(sa.insert(User), [{"email": e, "display_name": e.split("@")[0], "password_hash": password_hash,
                                              "public_id": hashlib.sha256(e.encode()).hexdigest()[:22]} for e in emails])
        group, report = Group(name="readers"), Report(slug=REPORT, title="Weekly Statistics")
        db.session.add_all([group, report])
        db.session.flush()
        db.session.execute(sa.insert(Membership), [{"user_id": uid, "group_id": group.id}
                                                   for uid in db.session.scalars(sa.select(User.id))])
        db.session.add(Grant(report_id=report.id, group_id=group.id))
        stored = store_for(app).put(io.BytesIO(pdf), limit=len(pdf))
        publication = Publication(report=report, version=1, run_id="seed", period_label="2026-W01",
                                  sha256=stored.sha256, size=stored.size, pages=1)
        db.session.add(publication)
        _, token = create_publisher_token("capacity")
        db.session.commit()
        public_id = publication.public_id
        db.session.remove()
        db.engine.dispose()
    return public_id, token


def signer(i: int) -> str:
    return f"signer{i:04d}@example.org"


def codes_in(outbox: Path) -> dict[str, str]:
    """Address -> the sign-in code of the newest outbox message to it."""
    found = {}
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        code = re.search(r"^\s+(\d{6,10})\s*$", message.get_body(preferencelist=("plain",)).get_content(), re.MULTILINE)
        if code:
            found[message["To"].addresses[0].addr_spec] = code.group(1)
    return found


# --- phases against the portal process ---------------------------------------------------------------


class Phases:
    """Runs a phase and books, per operation, the portal's CPU seconds and the audit rows it wrote."""

    def __init__(self, portal: subprocess.Popen, database: Path):
        self.portal, self.database = portal, database
        self.per_operation: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.audit_rows: dict[str, float] = {}

    def _audit_rows(self) -> int:
        with sqlite3.connect(self.database) as conn:
            return conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]

    def measure(self, name: str, operations: int, work) -> None:
        rows = self._audit_rows()
        before, started = group_cpu_seconds(self.portal), time.perf_counter()
        work()
        cpu, wall = group_cpu_seconds(self.portal) - before, time.perf_counter() - started
        self.per_operation[name], self.counts[name] = cpu / operations, operations
        self.audit_rows[name] = (self._audit_rows() - rows) / operations
        _log(f"{name}: {operations} in {wall:.1f} s wall, portal CPU {cpu:.2f} s -> {cpu / operations * 1000:.1f} ms each")


def sign_ins(base: str, instance: Path, signers: int, phases: Phases) -> tuple[list[str], list[str]]:
    """Password step (new device), code step, then a sign-in from the now trusted device; returns
    each signer's access cookie and device cookie."""
    import requests

    sessions = [requests.Session() for _ in range(signers)]

    def password_step(session: requests.Session, i: int) -> requests.Response:
        session.get(f"{base}/login", timeout=60)
        form = {"email": signer(i), "password": PASSWORD, "login_csrf": session.cookies.get("login_csrf", ""), "next": "/"}
        return session.post(f"{base}/login", data=form, allow_redirects=False, timeout=60)

    def new_devices() -> None:
        for i, session in enumerate(sessions):
            answer = password_step(session, i)
            if answer.status_code != 303 or not answer.headers["Location"].startswith("/login/verify"):
                raise SystemExit(f"capacity: the password step answered {answer.status_code}, not the code step")

    phases.measure("sign-in: password step (new device)", signers, new_devices)
    codes = codes_in(instance / "outbox")

    def code_steps() -> None:
        for i, session in enumerate(sessions):
            challenge = session.cookies.get("login_challenge", "").partition(".")[0]
            answer = session.post(f"{base}/login/verify", data={"challenge": challenge, "code": codes[signer(i)], "next": "/"},
                                  allow_redirects=False, timeout=60)
            if answer.status_code != 303 or not session.cookies.get("access_token_cookie"):
                raise SystemExit(f"capacity: the code step answered {answer.status_code}")

    phases.measure("sign-in: code step", signers, code_steps)
    devices = [s.cookies.get("nbpress_device", "") for s in sessions]

    def trusted() -> None:
        for i, device in enumerate(devices):
            session = requests.Session()
            session.cookies.set("nbpress_device", device)
            answer = password_step(session, i)
            if answer.status_code != 303 or answer.headers["Location"].startswith("/login/verify"):
                raise SystemExit(f"capacity: a trusted device was asked for a code ({answer.status_code})")

    phases.measure("sign-in: trusted device (password only)", signers, trusted)
    return [s.cookies.get("access_token_cookie", "") for s in sessions], devices


def requests_of(name: str, port: int, path: str, check, cookies: list[str], total: int, phases: Phases) -> None:
    """``total`` GETs of ``path`` by 4 keep-alive clients, each as a different signed-in reader;
    ``check(status, body)`` says whether an answer is the right one."""
    import http.client

    errors: list[str] = []

    def client(slot: int, count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Cookie": f"access_token_cookie={cookies[slot % len(cookies)]}"}
        for _ in range(count):
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            if not check(answer.status, body):
                errors.append(f"{answer.status}, {len(body)} bytes")
        connection.close()

    def work() -> None:
        threads = [threading.Thread(target=client, args=(slot, total // 4)) for slot in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    phases.measure(name, total // 4 * 4, work)
    if errors:
        raise SystemExit(f"capacity: {len(errors)} of {name} failed, e.g. {errors[0]}")


def publications(base: str, token: str, pdf: bytes, count: int, phases: Phases) -> None:
    """``count`` new publications of ``pdf`` (made unique per run), each queueing a mail per reader."""
    import requests

    bodies = [pdf.replace(b"%%EOF", f"%run {i}\n%%EOF".encode(), 1) for i in range(count)]

    def work() -> None:
        for i, body in enumerate(bodies):
            metadata = {"report": REPORT, "run_id": f"capacity-{i}", "sha256": hashlib.sha256(body).hexdigest(),
                        "period_label": f"2026-W{i + 2:02d}", "summary": "1,234 orders, 4 % up on last week"}
            answer = requests.post(f"{base}/api/v1/publications", headers={"Authorization": f"Bearer {token}"},
                                   data={"metadata": json.dumps(metadata)}, files={"file": ("report.pdf", body)}, timeout=120)
            if answer.status_code != 201:
                raise SystemExit(f"capacity: publishing answered {answer.status_code}: {answer.text[:200]}")

    phases.measure("publication (upload, store, queue)", count, work)


def mail_worker(instance: Path, expected: int) -> tuple[float, float]:
    """Send the queued mails with one ``mail-worker --once`` process; its CPU seconds per mail and wall seconds."""
    from aiosmtpd.controller import Controller

    class Count:
        received = 0

        async def handle_DATA(self, server, session, envelope):
            Count.received += 1
            return "250 OK"

    port = free_port()
    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    env = {**os.environ, "NBPRESS_INSTANCE": str(instance), "NBPRESS_MAIL_URL": f"smtp://127.0.0.1:{port}",
           "NBPRESS_NOTIFY_MAX_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    def worker(*extra: str) -> tuple[float, float]:
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "publish_server.admin", "mail-worker", "--once", *extra], env=env,
                              capture_output=True, text=True, timeout=3600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"capacity: the mail worker failed: {done.stderr[-500:]}")
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), time.perf_counter() - started

    try:
        # Its start-up (imports, app) is paid once per long-lived worker: measured apart, on an empty queue.
        startup, _ = worker_on_empty_queue(worker, instance)
        cpu, wall = worker()
    finally:
        controller.stop()
    if Count.received != expected:
        raise SystemExit(f"capacity: the mail worker sent {Count.received} of {expected}")
    per_mail = (cpu - startup) / expected
    _log(f"notification mails: {expected} in {wall:.1f} s wall, worker CPU {cpu:.2f} s (start-up {startup:.2f} s) "
         f"-> {per_mail * 1000:.2f} ms each")
    return per_mail, wall


def worker_on_empty_queue(worker, instance: Path) -> tuple[float, float]:
    """The worker's CPU with nothing due: the queued jobs are put off for the moment, then back."""
    with sqlite3.connect(instance / "portal.sqlite3") as conn:
        conn.execute("UPDATE mail_jobs SET next_attempt_at = datetime('now', '+1 day')")
    try:
        return worker()
    finally:
        with sqlite3.connect(instance / "portal.sqlite3") as conn:
            conn.execute("UPDATE mail_jobs SET next_attempt_at = datetime('now', '-1 minute')")


# --- a report run, rows, Redis keys --------------------------------------------------------------------


def report_run(workdir: Path, members: int) -> dict[str, float]:
    """``nbpress run weekly_statistics`` on the demo: CPU and wall seconds of the process tree, its
    peak memory, the PDF's and the run folder's bytes; then, with ``members``, a ``--grid`` batch
    (the local executor: kernels forked from a warm template) and its CPU seconds per member."""
    from .batch import _nbpress_batch
    from .pipeline import _demo_project, _nbpress_demo

    project, db = _demo_project(workdir)
    _nbpress_demo(project, db)  # the first run warms the caches (fonts, bytecode) a long-lived worker keeps
    result, run_dir = _nbpress_demo(project, db)
    pdf = (run_dir / "report.pdf").stat().st_size
    folder = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    _log(f"report run: {result.wall:.1f} s wall, CPU {result.cpu:.1f} s (tree), PDF {pdf:,} bytes, run folder {folder:,} bytes")
    figures = {"cpu_s": result.cpu, "wall_s": result.wall, "pdf_bytes": pdf, "run_folder_bytes": folder,
               "tree_pss_mib": result.tree_pss, "max_rss_mib": result.max_rss}
    if members:
        batch, _ = _nbpress_batch(project, db, members, workdir / "batch", None)
        figures.update(batch_members=members, batch_cpu_s_per_member=batch.cpu / members, batch_wall_s=batch.wall,
                       batch_tree_pss_mib=batch.tree_pss)
        _log(f"batch of {members}: {batch.wall:.1f} s wall, CPU {batch.cpu:.1f} s -> {batch.cpu / members:.1f} s per member")
    return figures


def argon2_verify_seconds(instance: Path, tries: int = 20) -> float:
    """CPU seconds of one Argon2id verify at the instance's (production) cost, in this process."""
    from publish_server import create_app
    from publish_server.signin.passwords import Passwords

    app = create_app(instance_path=instance)
    passwords = Passwords.from_settings(app.config["NBPRESS"])
    hashed = passwords.hash(PASSWORD)
    started = time.process_time()
    for _ in range(tries):
        passwords.verify(hashed, PASSWORD)
    return (time.process_time() - started) / tries


def group_rss_mib(process: subprocess.Popen) -> float:
    """Resident memory of every process in ``process``'s group (gunicorn's arbiter and workers), MiB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == process.pid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # rss, in pages
        except (OSError, IndexError):
            continue
    return total / 2**20


def bytes_per_row(database: Path) -> dict[str, dict[str, float]]:
    """Per growing table: rows, and the payload bytes per row of the table and of its indexes (SQLite)."""
    with sqlite3.connect(database) as conn:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
        payload: dict[str, list[float]] = {}
        for name, size in conn.execute("SELECT name, sum(payload) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            payload.setdefault(table, [0.0, 0.0])[0 if name == table else 1] += size
        indexes = dict(conn.execute("SELECT tbl_name, count(*) FROM sqlite_master WHERE type = 'index' GROUP BY tbl_name"))
        out = {}
        for table in GROWING:
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - our own table names
            if rows:
                table_bytes, index_bytes = payload.get(table, [0.0, 0.0])
                out[table] = {"rows": rows, "table_bytes": table_bytes / rows, "index_bytes": index_bytes / rows,
                              "indexes": indexes.get(table, 0)}
        return out


def redis_bytes_per_key(keys: int = 20_000) -> float | None:
    """Redis memory per fixed-window limit key (a counter with an expiry, Flask-Limiter's key shape)."""
    server = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        return None
    if server is None:
        return None
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process, "redis-server")
        client = redis.Redis(port=port)
        before = client.info("memory")["used_memory"]
        pipe = client.pipeline(transaction=False)
        for i in range(keys):
            key = f"LIMITS:LIMITER/failures:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/auth.login_submit/10/1/minute"
            pipe.incrby(key, 1)
            pipe.expire(key, 60)
        pipe.execute()
        used = client.info("memory")["used_memory"] - before
        client.close()
        return used / keys
    finally:
        stop(process)


# --- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--signins", type=int, default=30, help="users who sign in (each: new device, code, trusted) [30]")
    parser.add_argument("--downloads", type=int, default=600, help="downloads [600]")
    parser.add_argument("--publications", type=int, default=10, help="publications, each mailed to every reader [10]")
    parser.add_argument("--readers", type=int, default=500, help="further recipients (mail only) [500]")
    parser.add_argument("--batch", type=int, default=4, help="members of a --grid batch after the run; 0: none [4]")
    parser.add_argument("--skip-run", action="store_true", help="leave out the report run and the batch (and use a 150 kB PDF)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="nbpress-capacity-"))
    portal = None
    figures: dict[str, object] = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    try:
        if args.skip_run:
            pdf = make_pdf(150_000)
        else:
            figures["report_run"] = report_run(workdir, args.batch)
            pdf = max((workdir / "project" / "runs" / REPORT).glob("*/report.pdf"), key=os.path.getmtime).read_bytes()
        instance = workdir / "instance"
        instance.mkdir(mode=0o700)
        # Production Argon2 (the defaults); memory:// limits in the one process (RATELIMIT_PER_PROCESS).
        (instance / "portal.toml").write_text(
            f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\nJWT_SECRET = "{secrets.token_urlsafe(48)}"\nCOOKIE_SECURE = false\n'
            'MAIL_URL = "file:outbox"\nRATELIMIT_PER_PROCESS = true\n')
        public_id, token = seed(instance, args.signins, args.readers, pdf)
        port = free_port()
        portal = start_portal(instance, port, 1, 4, workdir / "gunicorn.log")
        wait_for_port(port, portal, "gunicorn")
        base = f"http://127.0.0.1:{port}"
        import requests

        requests.get(f"{base}/login", timeout=60)  # the worker's first request imports lazily: not an operation's cost
        phases = Phases(portal, instance / "portal.sqlite3")
        cookies, _devices = sign_ins(base, instance, args.signins, phases)
        requests_of("report page (the mail's link)", port, f"/reports/{REPORT}", lambda status, body: status == 200 and b"2026-W01" in body,
                    cookies, max(args.downloads // 4, 4), phases)
        requests_of("download", port, f"/p/{public_id}/download", lambda status, body: status == 200 and len(body) == len(pdf),
                    cookies, args.downloads, phases)
        publications(base, token, pdf, args.publications, phases)
        figures["portal_rss_mib"] = group_rss_mib(portal)
        stop(portal)
        portal = None
        mails = args.publications * (args.signins + args.readers)
        mail_cpu, mail_wall = mail_worker(instance, mails)
        figures.update({
            "pdf_bytes": len(pdf), "signins": args.signins, "readers": args.signins + args.readers,
            "portal_cpu_s_per_operation": phases.per_operation, "operations": phases.counts, "audit_rows_per_operation": phases.audit_rows,
            "mail_cpu_s": mail_cpu, "mails": mails, "mails_wall_s": mail_wall,
            "argon2_verify_cpu_s": argon2_verify_seconds(instance),
            "bytes_per_row": bytes_per_row(instance / "portal.sqlite3"), "redis_bytes_per_key": redis_bytes_per_key(),
        })
    finally:
        stop(portal)
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def report(figures: dict) -> None:
    print(f"capacity benchmark: CPU seconds per operation ({figures['cpus']} CPUs, shared; load average before "
          f"{figures['load_average_before'][0]:.1f}); wall times on a shared machine are not the portal's")
    for name, seconds in figures["portal_cpu_s_per_operation"].items():
        print(f"  {name:<45}{seconds * 1000:>10.2f} ms CPU  (portal process, {figures['operations'][name]} operations; "
              f"{figures['audit_rows_per_operation'][name]:.1f} audit rows each)")
    print(f"  {'Argon2id verify alone (in-process)':<45}{figures['argon2_verify_cpu_s'] * 1000:>10.2f} ms CPU  "
          "(every password step verifies once)")
    print(f"  {'notification mail':<45}{figures['mail_cpu_s'] * 1000:>10.2f} ms CPU  "
          f"(mail-worker process, {figures['mails']} mails, {figures['mails_wall_s']:.1f} s wall)")
    if "report_run" in figures:
        run = figures["report_run"]
        print(f"  {'report run (demo, process tree)':<45}{run['cpu_s'] * 1000:>10.0f} ms CPU  ({run['wall_s']:.1f} s wall; "
              f"peak {run['tree_pss_mib']:.0f} MiB PSS, largest process {run['max_rss_mib']:.0f} MiB; "
              f"run folder {run['run_folder_bytes']:,} bytes)")
        if run.get("batch_members"):
            print(f"  {'report run in a --grid batch, per member':<45}{run['batch_cpu_s_per_member'] * 1000:>10.0f} ms CPU  "
                  f"({run['batch_members']} members, local executor, {run['batch_wall_s']:.1f} s wall; "
                  f"peak {run['batch_tree_pss_mib']:.0f} MiB PSS)")
    print(f"PDF: {figures['pdf_bytes']:,} bytes; readers per publication: {figures['readers']}; "
          f"portal (1 worker x 4 threads + arbiter) resident: {figures['portal_rss_mib']:.0f} MiB")
    print("bytes per row (SQLite payload: table + its indexes):")
    for table, row in figures["bytes_per_row"].items():
        print(f"  {table:<20}{row['rows']:>8} rows {row['table_bytes']:>8.0f} + {row['index_bytes']:>6.0f} B "
              f"({row['indexes']} indexes)")
    per_key = figures["redis_bytes_per_key"]
    print(f"Redis: {per_key:.0f} bytes per limit key" if per_key else "Redis: not measured (no redis-server or redis package)")


if __name__ == "__main__":
    sys.exit(main())
