"""Where one signed-in download spends its time, in-process (no server, no network).

    python -m benchmarks.portal_profile [--requests 300] [--profile] [--top 25] [--database-url URL] [--json FILE]
    python -m benchmarks.portal_profile --against OTHER_TREE [--rounds 3] [--json FILE]

Seeds a temporary instance like ``benchmarks.portal`` (one recipient, one report granted to
them, one ~1 MB PDF), signs in through the real forms (password, then the emailed code read
from the development outbox) with Flask's test client, then:

* lists the SQL statements one download sends (on SQLite, its trace callback, which sees the
  express path's statements on the DBAPI cursor too; elsewhere a SQLAlchemy ``before_cursor_execute``
  listener; transaction control is not counted; pool pre-pings are counted apart);
* times ``--requests`` downloads (the body is not read: the file goes out by sendfile under
  gunicorn, so its bytes are not Python's work): wall-clock mean and median, and the CPU time
  per request of the quietest batch of 50 (the least disturbed by other processes);
* with ``--profile``, a second, profiled pass: own time per package, a per-stage breakdown (JWT,
  token state query, grant query, audit row, commit, response ...: the profiled ms of each and
  its estimated share of the unprofiled CPU) and cProfile's top functions.

With ``--against OTHER_TREE`` (a checkout of another commit, e.g. ``git worktree add /tmp/main
main``), that tree's portal and this one are profiled alternately in fresh processes, and the
quietest round of each is printed stage by stage: before and after, from the same run.

Cheap on a shared machine: one process, one core, a few seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.portal import EMAIL, make_pdf, outbox_code, seed

ROOT = Path(__file__).resolve().parents[1]
BATCH = 50
_NOT_A_STATEMENT = ("PRAGMA", "BEGIN", "COMMIT", "ROLLBACK")  # connection set-up and transaction control


def sign_in(client, instance: Path, password: str) -> None:
    client.get("/login")
    csrf = client.get_cookie("login_csrf")
    answer = client.post("/login", data={"email": EMAIL, "password": password, "login_csrf": csrf.value, "next": "/"})
    if answer.status_code == 303 and answer.headers["Location"].startswith("/login/verify"):
        challenge = client.get_cookie("login_challenge").value.partition(".")[0]
        answer = client.post("/login/verify", data={"challenge": challenge, "code": outbox_code(instance), "next": "/"})
    if answer.status_code != 303 or client.get_cookie("access_token_cookie") is None:
        raise SystemExit(f"profile: sign-in failed with status {answer.status_code}")


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own (not cumulative) time per top-level package: who spends the request's CPU."""
    totals: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        if filename == "~":
            package = f"C: {function.split(' of ')[-1].strip('<>')}" if " of " in function else "C: builtins"
        elif filename.endswith(("werkzeug/test.py", "flask/testing.py")):
            package = "test client (not under gunicorn)"
        elif "site-packages/" in filename:
            package = filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
        elif "/publish_server/" in filename:
            package = "publish_server"
        else:
            package = "stdlib/other"
        totals[package] = totals.get(package, 0.0) + own
    whole = sum(totals.values()) or 1.0
    return sorted(((k, v / whole) for k, v in totals.items()), key=lambda kv: -kv[1])[:15]


# The stages of one download, each the cumulative time of the functions that do it (cProfile keys:
# file name ending, function name), on Flask's path and on the express path. Stages that a tree
# does not have (the one-query gate before it existed, the express path before it existed) measure
# 0, so two trees profile side by side with one table (--against). "rest" is what no stage covers.
STAGES = (
    ("JWT verify (decode, checks)", (("flask_jwt_extended/utils.py", "decode_token"),)),
    ("express: remembered token, expiry", (("publish_server/express_downloads.py", "_claims"),)),
    ("token state query (user, deny-list, device)", (("signin/session_tokens.py", "_denied"),)),
    ("rate limiter", (("flask_limiter/_extension.py", "_check_request_limit"),)),
    ("grant + publication query", (("publish_server/access.py", "get_downloadable"),)),
    ("token state + grant + publication, one query", (("publish_server/download_gate.py", "_state_and_grant"),
                                                      ("publish_server/compiled_sql.py", "first"))),
    ("file location", (("publish_server/storage.py", "open_path"),)),
    ("audit row", (("publish_server/audit.py", "insert"), ("publish_server/express_downloads.py", "_store_audit_row"))),
    ("commit", (("sqlalchemy/orm/scoping.py", "commit"),)),
    ("response (the file answer / X-Accel-Redirect)", (("publish_server/pages.py", "file_response"),
                                                        ("publish_server/express_downloads.py", "_file_answer"))),
)
WHOLE = ("flask/app.py", "__call__")  # the app's WSGI entry: the express layer and Flask's wsgi_app


def stage_breakdown(stats: pstats.Stats, requests: int, cpu_ms: float) -> list[tuple[str, float, float]]:
    """(stage, profiled ms per request, share of the request); shares scale to unprofiled CPU.

    cProfile slows everything about alike, so a stage's share of the profiled request times the
    unprofiled CPU per request estimates its real cost: where each 0.1 ms goes.
    """
    def cumulative(suffix: str, name: str) -> float:
        return sum(cum for (filename, _line, function), (_cc, _nc, _own, cum, _callers) in stats.stats.items()
                   if function == name and filename.replace("\\", "/").endswith(suffix))

    whole = cumulative(*WHOLE) or 1.0
    rows = [(label, sum(cumulative(*key) for key in keys)) for label, keys in STAGES]
    rows.append(("rest: Flask, Werkzeug, WSGI layers, cookies", whole - sum(t for _, t in rows)))
    return [(label, t / requests * 1000, t / whole * cpu_ms) for label, t in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portal_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="downloads to time [300]")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top functions")
    parser.add_argument("--top", type=int, default=25, help="functions listed per cProfile table [25]")
    parser.add_argument("--database-url", default="", help="SQLAlchemy URL of an empty database [SQLite in the temporary instance]")
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--code", type=Path, help="profile the portal of this source tree (a checkout of another commit) [this one]")
    parser.add_argument("--against", type=Path, metavar="TREE",
                        help="profile TREE's portal and this one alternately (--rounds each, in subprocesses) and print both")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tree with --against [3]")
    parser.add_argument("--label", default="", help="what the --against tree is, for the results (e.g. 'main at 98c05eb')")
    parser.add_argument("--json", type=Path, help="also write the figures here (e.g. benchmarks/results/portal_profile.json)")
    args = parser.parse_args(argv)
    if args.against:
        return compare(args)
    figures = measure(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def compare(args: argparse.Namespace) -> int:
    """This tree and ``--against`` alternately, each round in fresh subprocesses; the quietest round
    (least CPU) of each is kept, with its per-stage estimate."""
    trees = {"before": args.against.resolve(), "after": ROOT}
    load_average = os.getloadavg()[0]
    rounds: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="nbpress-profile-compare-") as scratch:
        for number in range(args.rounds):
            for name, tree in trees.items():
                out = Path(scratch) / f"{name}-{number}.json"
                command = [sys.executable, "-m", "benchmarks.portal_profile", "--code", str(tree), "--profile", "--top", "0",
                           "--requests", str(args.requests), "--size-mb", str(args.size_mb), "--json", str(out)]
                if args.database_url:
                    command += ["--database-url", args.database_url]
                subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                rounds[name].append(json.loads(out.read_text()))
    best = {name: min(runs, key=lambda r: r["cpu_ms"]) for name, runs in rounds.items()}
    print(f"--- {args.against} (before) vs {ROOT} (after): {args.rounds} alternating rounds, the quietest of each ---")
    for name in trees:
        cpus = ", ".join(f"{r['cpu_ms']:.2f}" for r in rounds[name])
        print(f"  {name:<7} CPU {best[name]['cpu_ms']:.2f} ms per download (rounds: {cpus}); "
              f"{best[name]['statements']} SQL statements; wall median {best[name]['wall_median_ms']:.2f} ms")
    print(f"{'stage':<48}{'before ms':>10}{'after ms':>10}")
    for label in [stage["stage"] for stage in best["before"]["stages"]]:
        ms = {name: next((s["ms"] for s in best[name]["stages"] if s["stage"] == label), 0.0) for name in trees}
        print(f"  {label:<46}{ms['before']:>10.2f}{ms['after']:>10.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"before": best["before"], "after": best["after"], "rounds": args.rounds, "load_average": load_average,
                                         "before_tree": str(args.against), "before_label": args.label, "finished": _now(), "cpu_ms_rounds": {n: [r["cpu_ms"] for r in rounds[n]] for n in trees}},
                                        indent=2) + "\n")
    return 0


def measure(args: argparse.Namespace) -> dict:
    """Profile the downloads of one tree's portal (this one, or ``--code``); print and return the figures."""
    if args.code:
        # Imported from there before benchmarks.portal's seed() imports it: that tree's portal, this harness.
        sys.path.insert(0, str(args.code.resolve()))
        import publish_server  # noqa: F401
    sys.path.insert(len(sys.path) if args.code else 0, str(ROOT))
    from sqlalchemy import event

    from publish_server import create_app
    from publish_server.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="nbpress-profile-"))
    try:
        instance = workdir / "instance"
        instance.mkdir(mode=0o700)
        password = secrets.token_urlsafe(18)
        database = f'DATABASE_URL = "{args.database_url}"\n' if args.database_url else ""
        (instance / "portal.toml").write_text(
            f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\nJWT_SECRET = "{secrets.token_urlsafe(48)}"\n'
            f"COOKIE_SECURE = false\n{database}"
        )
        public_id = seed(instance, make_pdf(int(args.size_mb * 1_000_000)), password)
        app = create_app(instance_path=instance)
        client = app.test_client()
        sign_in(client, instance, password)
        path = f"/p/{public_id}/download"

        statements: list[str] = []
        pings = [0]
        with app.app_context():
            engine = db.engine

        def on_execute(_conn, _cursor, statement, _params, _context, _many):
            statements.append(" ".join(statement.split()))

        def on_checkout(*_args):
            pings[0] += 1

        for _ in range(3):  # warm caches (compiled statements, Jinja, connections)
            response = client.get(path)
            assert response.status_code == 200, response.status_code
            response.close()
        traced = engine.dialect.name == "sqlite"
        if traced:
            # The express path runs its statements on the DBAPI cursor, past SQLAlchemy's events:
            # SQLite's own trace sees them, on connections opened from here on.
            def trace_connection(dbapi_connection, _record):
                dbapi_connection.set_trace_callback(
                    lambda sql: None if sql.startswith(_NOT_A_STATEMENT) else statements.append(" ".join(sql.split())))

            engine.dispose()
            event.listen(engine, "connect", trace_connection)
            client.get(path).close()  # opens the traced connection
            statements.clear()
        else:
            event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine.pool, "checkout", on_checkout)
        response = client.get(path)
        response.close()
        event.remove(engine.pool, "checkout", on_checkout)
        if traced:
            event.remove(engine, "connect", trace_connection)
            engine.dispose()  # the timed downloads run untraced
        else:
            event.remove(engine, "before_cursor_execute", on_execute)
        pre_ping = " (each with a pre-ping round trip)" if engine.pool._pre_ping else ""
        print(f"one download ({engine.dialect.name}): {len(statements)} SQL statements, {pings[0]} pool checkout(s){pre_ping}")
        for number, statement in enumerate(statements, 1):
            print(f"  {number:>2}. {statement[:160]}{' ...' if len(statement) > 160 else ''}")

        timings, batches = [], []
        for start in range(0, args.requests, BATCH):
            cpu_began = time.process_time()
            for _ in range(min(BATCH, args.requests - start)):
                started = time.perf_counter()
                response = client.get(path)
                response.close()
                timings.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"profile: download answered {response.status_code}")
            batches.append((time.process_time() - cpu_began) / min(BATCH, args.requests - start))
        # CPU time of the quietest batch: other processes on a shared machine inflate the rest.
        cpu = min(batches) * 1000
        mean, median = statistics.fmean(timings) * 1000, statistics.median(timings) * 1000
        print(f"{args.requests} downloads in-process: wall mean {mean:.2f} ms, median {median:.2f} ms; "
              f"CPU {cpu:.2f} ms per request (best batch of {BATCH}) -> at most ~{1000 / cpu:.0f} req/s per core")
        profiler = None
        if args.profile:  # a second, profiled pass: the figures above stay unprofiled
            profiler = cProfile.Profile()
            for _ in range(args.requests):
                profiler.enable()
                response = client.get(path)
                response.close()
                profiler.disable()
        figures = {"finished": _now(), "load_average": os.getloadavg()[0], "database": engine.dialect.name, "statements": len(statements), "requests": args.requests,
                   "cpu_ms": round(cpu, 3), "wall_median_ms": round(median, 3), "stages": []}
        if profiler:
            print("--- cProfile: own time by package ---")
            for package, share in by_package(pstats.Stats(profiler)):
                print(f"  {share:6.1%}  {package}")
            print(f"--- per stage: ms per download (profiled), estimated ms of the {cpu:.2f} ms unprofiled CPU ---")
            for label, profiled, estimated in stage_breakdown(pstats.Stats(profiler), args.requests, cpu):
                print(f"  {profiled:6.2f}  {estimated:5.2f}  {label}")
                figures["stages"].append({"stage": label, "ms": round(estimated, 3), "profiled_ms": round(profiled, 3)})
            for key in ("tottime", "cumulative") if args.top else ():
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key).print_stats(args.top)
                text = out.getvalue()
                print(f"--- cProfile by {key} ---")
                print(text[text.find("   ncalls"):].rstrip())
        with app.app_context():
            db.engine.dispose()
        return figures
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
