"""Authenticated PDF downloads through the portal (gunicorn) against nginx serving the same file.

    python -m benchmarks.portal [--duration 10] [--connections 16] [--size-mb 1]

What runs, all on loopback and in a temporary folder that is removed at the end:

* the portal: ``gunicorn -w 2`` (gthread, 4 threads: README's production advice) over a SQLite
  instance seeded with one recipient, one report granted to them and one ~1 MB PDF publication;
  the load generator presents the recipient's real sign-in cookie (``POST /login``, then the
  emailed code from the development outbox at ``POST /login/verify``), so every request runs the
  whole download path: JWT check, deny-list, grant query, audit row + commit, then the bytes;
* nginx (Debian's package) with two worker processes, on two ports: one serving the same bytes
  as a static file, one proxying to a second gunicorn started with
  ``NBPRESS_ACCEL_REDIRECT_PREFIX`` so that the portal checks and audits and nginx sends the
  file from an ``internal`` location (the block README shows for production);
* the same load generator for the three, one after the other in the same run: ``wrk`` when
  installed (``.ci/debian-packages wrk``), otherwise a small threaded keep-alive client.

Before timing, one download from each is checked against the published SHA-256 (and the portal's
headers: attachment, no-store, nosniff, ETag, no X-Accel-Redirect leaking out), and the internal
location must refuse a direct request; after timing, the audit log must hold at least as many
downloads as were counted, so a redirect to the sign-in page can never pass for a fast download.
A fourth server shows the floor: the same gunicorn serving the same file with no check at all
(:mod:`benchmarks.bare_download`), i.e. what gunicorn itself costs per download.
Printed: requests/s, p95, ratio to nginx static, and the servers' CPU per request (from /proc).
Every process started here is stopped here. Target (issue 17): portal >= 0.4x nginx requests/s, direct and behind nginx.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMAIL = "bench@example.org"
TARGET = 0.4  # issue 17
PORTALS = ("portal", "accel")  # the servers that run the portal's checks (and write audit rows)


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p95_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- fixtures: a PDF, a seeded instance ---------------------------------------------------------


def make_pdf(size: int) -> bytes:
    """A real PDF (one page) of about ``size`` bytes: the bulk is an incompressible attachment."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment("payload.bin", secrets.token_bytes(max(0, size - 1200)))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def seed(instance: Path, pdf: bytes, password: str) -> str:
    """A recipient, a report granted to them and one publication; returns its public id."""
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from publish_server import create_app
    from publish_server.extensions import db
    from publish_server.models import Grant, Publication, Report, User
    from publish_server.signin.passwords import Passwords
    from publish_server.storage import FileStore

    app = create_app(instance_path=instance)
    with app.app_context():
        upgrade()
        stored = FileStore(app.config["FILES_DIR"]).put(io.BytesIO(pdf), limit=len(pdf))
        user = User(email=EMAIL, display_name="Bench", password_hash=Passwords.from_settings(app.config["NBPRESS"]).hash(password))
        report = Report(slug="weekly_statistics", title="Weekly Statistics")
        publication = Publication(report=report, version=1, run_id="bench-1", period_label="2026-W47",
                                  sha256=stored.sha256, size=stored.size, pages=1)
        db.session.add_all([user, report, publication])
        db.session.flush()
        db.session.add(Grant(report_id=report.id, user_id=user.id))
        db.session.commit()
        public_id = publication.public_id
        db.session.remove()
        db.engine.dispose()
    return public_id


# --- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"benchmark: {name} exited early with status {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"benchmark: {name} did not listen on port {port} within {timeout:.0f} s")


def stop(process: subprocess.Popen | None) -> None:
    """Stop one process we started, and its workers (its own process group), by id."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def start_portal(instance: Path, port: int, workers: int, threads: int, log: Path, accel_prefix: str = "",
                 host: str = "127.0.0.1", wrapper: tuple[str, ...] = (), bare_file: Path | None = None) -> subprocess.Popen:
    """gunicorn serving ``instance`` on ``host``:``port``; ``wrapper`` runs it inside e.g. ``ip netns exec NS``.
    With ``bare_file``, the same gunicorn serves that file with no check (:mod:`benchmarks.bare_download`)."""
    env = {**os.environ, "NBPRESS_INSTANCE": str(instance), "NBPRESS_ACCEL_REDIRECT_PREFIX": accel_prefix,
           "NBPRESS_BENCH_FILE": str(bare_file or "")}
    worker = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else ["--worker-class", "sync"]
    app = "benchmarks.bare_download:app" if bare_file else "publish_server:create_app()"
    command = [*wrapper, sys.executable, "-m", "gunicorn", "--workers", str(workers), *worker,
               "--bind", f"{host}:{port}", "--log-level", "warning", app]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    types {{ application/pdf pdf; }}
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
        location / {{ add_header Cache-Control no-store; }}
    }}
    # The portal behind nginx, as README's production section sets it up: every request goes to
    # gunicorn (all checks, the audit row); the bytes come from the internal location.
    upstream portal {{ server 127.0.0.1:{portal_port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{accel_port};
        location / {{
            proxy_pass http://portal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
{files_location}
    }}
}}
"""

# The same block README shows for production (the alias is the portal's FILES_DIR).
FILES_LOCATION = """\
        location {accel_prefix}/ {{
            internal;  # reachable only through the portal's X-Accel-Redirect
            alias {files}/;
            etag off;  # the portal's ETag (the SHA-256) is the one clients know
            add_header ETag $upstream_http_etag;
            add_header X-Content-Type-Options $upstream_http_x_content_type_options always;
            add_header Content-Security-Policy $upstream_http_content_security_policy always;
            add_header Referrer-Policy $upstream_http_referrer_policy always;
            add_header X-Frame-Options $upstream_http_x_frame_options always;
            add_header Cross-Origin-Opener-Policy $upstream_http_cross_origin_opener_policy always;
            add_header Strict-Transport-Security $upstream_http_strict_transport_security always;
        }}"""
ACCEL_PREFIX = "/_nbpress_files"


def start_nginx(prefix: Path, port: int, workers: int, pdf_path: Path, accel_port: int, portal_port: int, files: Path) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("benchmark: nginx is not installed (run `.ci/debian-packages nginx`)")
    (prefix / "www").mkdir(parents=True)
    (prefix / "tmp").mkdir()
    shutil.copyfile(pdf_path, prefix / "www" / "report.pdf")
    prefix.parent.chmod(0o711)  # workers drop to an unprivileged user when run as root
    for path in (prefix, prefix / "www"):
        path.chmod(0o755)
    (prefix / "www" / "report.pdf").chmod(0o644)
    # The portal's store is private to its user (0700 instance, 0640 files); in production nginx
    # reads it through a shared group. Here the workers simply run as this benchmark's user.
    import pwd

    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(
        workers=workers, prefix=prefix, port=port, user=user, accel_port=accel_port, portal_port=portal_port,
        files_location=FILES_LOCATION.format(accel_prefix=ACCEL_PREFIX, files=files),
    ))
    return subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


# --- signing in and checking --------------------------------------------------------------------------


def outbox_code(instance: Path) -> str:
    """The sign-in code in the newest message of the instance's development outbox (MAIL_URL file:outbox)."""
    import email
    import email.policy

    newest = sorted((instance / "outbox").glob("*.eml"))[-1]
    message = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    found = re.search(r"^\s+(\d{6,10})\s*$", message.get_body(preferencelist=("plain",)).get_content(), re.MULTILINE)
    if not found:
        raise SystemExit("benchmark: the newest outbox message holds no sign-in code")
    return found.group(1)


def sign_in(port: int, password: str, instance: Path) -> str:
    """The recipient's access-token cookie, from the real sign-in forms (password, then the emailed code)."""
    import requests

    session = requests.Session()
    base = f"http://127.0.0.1:{port}"
    session.get(f"{base}/login", timeout=10)
    form = {"email": EMAIL, "password": password, "login_csrf": session.cookies.get("login_csrf", ""), "next": "/"}
    response = session.post(f"{base}/login", data=form, allow_redirects=False, timeout=30)
    if response.status_code == 303 and response.headers.get("Location", "").startswith("/login/verify"):
        challenge = session.cookies.get("login_challenge", "").partition(".")[0]
        code = {"challenge": challenge, "code": outbox_code(instance), "next": "/"}
        response = session.post(f"{base}/login/verify", data=code, allow_redirects=False, timeout=30)
    token = session.cookies.get("access_token_cookie")
    if response.status_code != 303 or not token:
        raise SystemExit(f"benchmark: sign-in failed with status {response.status_code}")
    return f"access_token_cookie={token}"


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, http.client.HTTPMessage]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


def check_download_headers(name: str, headers: http.client.HTTPMessage) -> None:
    """What a browser must get with the PDF, whoever sent the bytes; the internal path stays inside."""
    expected = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Type": "application/pdf"}
    wrong = [k for k, v in expected.items() if headers.get(k) != v]
    if not headers.get("Content-Disposition", "").startswith("attachment; filename=") or not headers.get("ETag"):
        wrong.append("Content-Disposition/ETag")
    if headers.get("X-Accel-Redirect"):
        wrong.append("X-Accel-Redirect reached the client")
    if wrong:
        raise SystemExit(f"benchmark: {name} download headers wrong: {', '.join(wrong)}")


def group_cpu_seconds(process: subprocess.Popen) -> float:
    """User + system CPU of every live process in ``process``'s group (gunicorn's workers, nginx's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == process.pid:  # fields[2] is the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def audited_downloads(instance: Path) -> int:
    with sqlite3.connect(instance / "portal.sqlite3") as conn:
        return conn.execute("SELECT count(*) FROM audit_events WHERE event = 'download'").fetchone()[0]


# --- load generators -------------------------------------------------------------------------------------

WRK_REPORT = """\
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p95_us=%d errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(95), errors))
end
"""


def run_wrk(name: str, port: int, path: str, headers: dict[str, str], duration: int, connections: int, workdir: Path) -> Result:
    script = workdir / "report.lua"
    script.write_text(WRK_REPORT)
    command = ["wrk", "--threads", "2", "--connections", str(connections), "--duration", f"{duration}s",
               "--timeout", "10s", "--script", str(script)]
    for key, value in headers.items():
        command += ["--header", f"{key}: {value}"]
    output = subprocess.run(command + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=duration + 60).stdout
    found = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p95_us=(\d+) errors=(\d+)", output)
    if not found:
        raise SystemExit(f"benchmark: could not read wrk's output for {name}:\n{output}")
    requests_, duration_us, p95_us, errors = map(int, found.groups())
    return Result(name, requests_, duration_us / 1e6, p95_us / 1000, errors)


def run_threads(name: str, port: int, path: str, headers: dict[str, str], duration: int, connections: int, _workdir: Path) -> Result:
    """A keep-alive client per thread; counts only complete 200 responses of the expected size."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop_at = time.perf_counter() + duration

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.status != 200 or not body.startswith(b"%PDF-"):
                    errors[slot] += 1
                    continue
                latencies[slot].append(time.perf_counter() - started)
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    everything = sorted(x for per in latencies for x in per)
    p95 = statistics.quantiles(everything, n=20)[-1] * 1000 if len(everything) >= 20 else float("nan")
    return Result(name, len(everything), elapsed, p95, sum(errors))


# --- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per server [10]")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of untimed load first [2]")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections [16]")
    parser.add_argument("--size-mb", type=float, default=1.0, help="PDF size in MB [1]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers and nginx worker processes [2]")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker; 1 = sync workers [4]")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto", help="load generator [auto: wrk if installed]")
    parser.add_argument("--json", type=Path, help="also write the figures here (e.g. benchmarks/results/portal.json)")
    args = parser.parse_args(argv)

    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("benchmark: wrk is not installed (run `.ci/debian-packages wrk`)")
    load = run_wrk if use_wrk else run_threads
    client_name = "wrk" if use_wrk else "threaded keep-alive client"

    workdir = Path(tempfile.mkdtemp(prefix="nbpress-bench-"))
    portal = accel_portal = floor = nginx = None
    try:
        instance = workdir / "instance"
        instance.mkdir(mode=0o700)
        password = secrets.token_urlsafe(18)
        # RATELIMIT_PER_PROCESS: a bench on one machine (memory:// limits, each gunicorn worker counting on its own).
        (instance / "portal.toml").write_text(
            f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\nJWT_SECRET = "{secrets.token_urlsafe(48)}"\nCOOKIE_SECURE = false\n'
            "RATELIMIT_PER_PROCESS = true\n"
        )
        pdf = make_pdf(int(args.size_mb * 1_000_000))
        sha256 = hashlib.sha256(pdf).hexdigest()
        public_id = seed(instance, pdf, password)
        pdf_path = workdir / "report.pdf"
        pdf_path.write_bytes(pdf)

        portal_port, accel_portal_port, nginx_port, accel_port = free_port(), free_port(), free_port(), free_port()
        portal = start_portal(instance, portal_port, args.workers, args.threads, workdir / "gunicorn.log")
        # A second portal on the same instance, told to hand bytes to nginx; idle while the others run.
        accel_portal = start_portal(instance, accel_portal_port, args.workers, args.threads, workdir / "gunicorn-accel.log",
                                    accel_prefix=ACCEL_PREFIX)
        floor_port = free_port()
        floor = start_portal(instance, floor_port, args.workers, args.threads, workdir / "gunicorn-floor.log", bare_file=pdf_path)
        nginx = start_nginx(workdir / "nginx", nginx_port, args.workers, pdf_path, accel_port, accel_portal_port, instance / "files")
        wait_for_port(floor_port, floor, "gunicorn (no checks)")
        wait_for_port(portal_port, portal, "gunicorn")
        wait_for_port(accel_portal_port, accel_portal, "gunicorn (X-Accel-Redirect)")
        wait_for_port(nginx_port, nginx, "nginx")

        cookie = sign_in(portal_port, password, instance)
        download = f"/p/{public_id}/download"
        targets = {
            "nginx": (nginx_port, "/report.pdf", {}),
            "portal": (portal_port, download, {"Cookie": cookie}),
            "accel": (accel_port, download, {"Cookie": cookie}),
            "floor": (floor_port, "/report.pdf", {}),
        }
        labels = {
            "nginx": "nginx (static file)",
            "portal": "portal (gunicorn direct)",
            "accel": "portal behind nginx (X-Accel-Redirect)",
            "floor": "gunicorn alone, no check (the floor)",
        }
        for name, (port, path, headers) in targets.items():
            status, body, answer = fetch(port, path, headers)
            if status != 200 or hashlib.sha256(body).hexdigest() != sha256:
                raise SystemExit(f"benchmark: {name} did not serve the published PDF (status {status})")
            if name in PORTALS:
                check_download_headers(name, answer)
        # The internal location must not answer a client directly, whatever the path.
        stored = f"{ACCEL_PREFIX}/{sha256[:2]}/{sha256}.pdf"
        if fetch(accel_port, stored, {"Cookie": cookie})[0] != 404:
            raise SystemExit("benchmark: nginx serves the file store to clients directly (the location must be `internal`)")

        load_average = os.getloadavg()[0]  # how busy the machine was: quote the ratios with it
        print(f"portal benchmark: {len(pdf):,}-byte PDF, {args.duration} s per server, {args.connections} connections, "
              f"{client_name}; gunicorn {args.workers} workers x {args.threads} threads (SQLite), nginx {args.workers} workers; "
              f"{os.cpu_count()} CPUs shared with the load generator", flush=True)
        results: dict[str, Result] = {}
        cpu: dict[str, list[float]] = {}  # server CPU ms per request: [gunicorn] / [gunicorn, nginx] / [nginx]
        for name, (port, path, headers) in targets.items():
            if args.warmup:
                load(name, port, path, headers, args.warmup, args.connections, workdir)
            before = audited_downloads(instance) if name in PORTALS else 0
            servers = {"nginx": [nginx], "portal": [portal], "accel": [accel_portal, nginx], "floor": [floor]}[name]
            cpu_before = [group_cpu_seconds(server) for server in servers]
            results[name] = load(name, port, path, headers, args.duration, args.connections, workdir)
            cpu[name] = [(group_cpu_seconds(server) - began) / max(results[name].requests, 1) * 1000
                         for server, began in zip(servers, cpu_before)]
            if name in PORTALS:
                audited = audited_downloads(instance) - before
                if audited < results[name].requests:
                    raise SystemExit(f"benchmark: {results[name].requests} {name} responses but only {audited} audited downloads")

        print(f"{'server':<42}{'requests/s':>12}{'p95 ms':>10}{'MB/s':>10}{'errors':>8}{'vs nginx':>10}")
        base = results["nginx"]
        ratios = {}
        for name, result in results.items():
            ratios[name] = result.rps / base.rps if base.rps else 0.0
            print(f"{labels[name]:<42}{result.rps:>12.1f}{result.p95_ms:>10.2f}{result.rps * len(pdf) / 1e6:>10.1f}"
                  f"{result.errors:>8}{ratios[name]:>9.2f}x")
        print(f"server CPU per request: nginx static {cpu['nginx'][0]:.2f} ms; portal direct: gunicorn {cpu['portal'][0]:.2f} ms; "
              f"behind nginx: gunicorn {cpu['accel'][0]:.2f} ms + nginx {cpu['accel'][1]:.2f} ms; "
              f"gunicorn alone, no check: {cpu['floor'][0]:.2f} ms")
        for name in PORTALS:
            verdict = "meets" if ratios[name] >= TARGET else "below"
            print(f"ratio {labels[name]} / nginx requests/s: {ratios[name]:.2f}x ({verdict} the {TARGET}x target); "
                  f"p95: {results[name].p95_ms / base.p95_ms:.2f}x")
        ratio = ratios["portal"]
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "pdf_bytes": len(pdf), "duration_s": args.duration, "connections": args.connections, "client": client_name,
                "workers": args.workers, "threads": args.threads, "ratio": ratio, "ratio_accel": ratios["accel"],
                "ratio_floor": ratios["floor"], "load_average": load_average,
                "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                **{name: {"rps": r.rps, "p95_ms": r.p95_ms, "requests": r.requests, "errors": r.errors, "server_cpu_ms_per_request": cpu[name]}
                   for name, r in results.items()},
            }, indent=2))
        return 0
    finally:
        stop(portal)
        stop(accel_portal)
        stop(floor)
        stop(nginx)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
