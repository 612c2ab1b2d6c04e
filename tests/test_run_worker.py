"""``nbpress worker`` end to end: a REAL portal on loopback, REAL worker processes, real kernels.

Requests are queued as the portal's user side stores them (ORM rows); everything after that goes
over HTTP between the worker process and the portal: profiles, claims, progress, finish, run
logs, notebooks, publications. Signals are real (SIGTERM, SIGKILL) and so are the kernels they
stop. A notebook waits while its ``gate`` file exists, so a test holds a run mid-execution.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from flask_migrate import upgrade

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import Publication, Report, ReportProfile, RunLog, RunRequest, User
from publish_server.publishing import create_publisher_token
from tests.conftest import make_notebook
from tests.helpers import wait_for
from tests.portal.conftest import base_config
from tests.portal.test_publishing import serve
from tests.test_canaries import LEAKY, PARAMS, RAISES, Canaries

GATED = """
n: int = 2  # how many
gate: str = ""
api_token: str = ""
data_url: str
"""
WAITS = """
import os, time
import toolkit as tk
while gate and os.path.exists(gate):
    time.sleep(0.05)
tk.metric("n", n, label="Count")
assert data_url == "sqlite:///data.db"  # the worker's -p: no request may choose the data
"""
FINAL = {"succeeded", "failed", "cancelled", "expired"}


class Portal:
    def __init__(self, app, url: str, token: str):
        self.app, self.url, self.token = app, url, token

    def queue(self, report: str, parameters: dict) -> str:
        """A queued request by Alice, as the portal's form stores it; its public id."""
        with self.app.app_context():
            user = db.session.scalars(sa.select(User).where(User.email == "alice@example.org")).first()
            if user is None:
                user = User(email="alice@example.org", display_name="Alice", password_hash="x")
                db.session.add(user)
            row = db.session.scalars(sa.select(Report).where(Report.slug == report)).first()
            if row is None:
                row = Report(slug=report, title=report)
                db.session.add(row)
            db.session.flush()
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            request = RunRequest(report_id=row.id, user_id=user.id, parameters=parameters, created_at=now,
                                 expires_at=now + dt.timedelta(minutes=30))
            db.session.add(request)
            db.session.commit()
            return request.public_id

    def request(self, public_id: str) -> RunRequest:
        with self.app.app_context():
            row = db.session.scalars(sa.select(RunRequest).where(RunRequest.public_id == public_id)).one()
            db.session.expunge(row)
            return row

    def rows(self, model, **where) -> list:
        with self.app.app_context():
            found = list(db.session.scalars(sa.select(model).filter_by(**where)))
            for row in found:
                db.session.expunge(row)
            return found

    def update(self, public_id: str, **values) -> None:
        with self.app.app_context():
            db.session.execute(sa.update(RunRequest).where(RunRequest.public_id == public_id).values(**values))
            db.session.commit()


@pytest.fixture
def portal(tmp_path):
    # The shortest lease the portal allows; 3 tries, so a worker stopped and one killed still leave one.
    app = create_app(base_config(RUN_LEASE_SECONDS=10, RUN_MAX_ATTEMPTS=3), instance_path=tmp_path / "portal")
    with app.app_context():
        upgrade()
        _row, token = create_publisher_token("toolkit")
        db.session.commit()
    with serve(app) as url:
        yield Portal(app, url, token)
    with app.app_context():
        db.engine.dispose()


def gated_report(project, name: str = "quick") -> None:
    make_notebook(project.notebooks_dir / f"{name}.ipynb", GATED, WAITS)
    (project.notebooks_dir / f"{name}.yml").write_text(yaml.safe_dump({"title": "Quick", "owner": "analyst@example.com"}))


def start_worker(project, portal: Portal, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``nbpress worker`` as a process of its own; its output goes to a file (read with :func:`output`)."""
    exe = Path(sys.executable).with_name("nbpress")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    log = (project.root / f"worker-{len(list(project.root.glob('worker-*.log')))}.log").open("w")
    process = subprocess.Popen([str(exe), "worker", "--portal", portal.url, "--poll", "0.2", "-p", "data_url=sqlite:///data.db",
                                *args], cwd=project.root,
                               env={**clean, "HOME": str(project.root), "NBPRESS_PUBLISH_TOKEN": portal.token, **(env or {})},
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = Path(log.name)
    log.close()
    return process


def output(process: subprocess.Popen) -> str:
    return process.log_path.read_text()


def finished(process: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"the worker did not exit within {timeout} s:\n{output(process)}") from None


def running_in(portal: Portal, public_id: str, stage: str = "execute", process: subprocess.Popen | None = None) -> RunRequest:
    return wait_for(lambda: (r := portal.request(public_id)).status == "running" and r.stage == stage and r,
                    timeout=60, what=f"request {public_id} running at {stage}", process=process)


def run_folders(project, report: str = "quick") -> list[Path]:
    return sorted((project.runs_dir / report).iterdir()) if (project.runs_dir / report).is_dir() else []


def run_status(run_dir: Path) -> str:
    import json

    return json.loads((run_dir / "run.json").read_text())["status"]


# --- the good path, two workers --------------------------------------------------------------


def test_two_workers_serve_a_queue_each_request_once_and_the_toolkit_refuses_a_bad_value(portal, project, proof):
    proof.case("faults", "two nbpress worker processes claim one queue at once",
               "each request runs once (one run folder, one run log, attempt 1), a value the portal let through "
               "is refused with the toolkit's message before any kernel starts")
    gated_report(project)
    gate = project.root / "gate"
    gate.touch()
    refused = portal.queue("quick", {"n": "zebra"})  # a value the portal let through: the toolkit checks again
    kept_back = portal.queue("quick", {"gate": "x", "api_token": "t"})  # a parameter the form never offered
    ids = [portal.queue("quick", {"n": n, "gate": str(gate)}) for n in (1, 2)]
    workers = [start_worker(project, portal) for _ in range(2)]
    try:
        bad = wait_for(lambda: (r := portal.request(refused)).status in FINAL and r, timeout=60, what="the bad request ends",
                       process=workers[0])
        assert (bad.status, bad.error_line, bad.attempts) == ("failed", "parameter 'n': got 'zebra', expected int", 1)
        bad = wait_for(lambda: (r := portal.request(kept_back)).status in FINAL and r, timeout=60, what="the other ends")
        assert (bad.status, bad.error_line) == ("failed", "parameter 'api_token': cannot be set from the portal "
                                                          "(it keeps the spec's or the worker's value)")
        # both run at once, each its own request: the portal gave neither request to both
        owners = {running_in(portal, i, process=workers[0]).lease_owner for i in ids}
        assert len(owners) == 2
        gate.unlink()
        done = [wait_for(lambda i=i: (r := portal.request(i)).status in FINAL and r, timeout=90, what=f"{i} ends")
                for i in ids]
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    assert [finished(w) for w in workers] == [0, 0], [output(w) for w in workers]
    assert [(r.status, r.attempts, r.error_line) for r in done] == [("succeeded", 1, "")] * 2
    publications = portal.rows(Publication)
    assert sorted(p.id for p in publications) == sorted(r.publication_id for r in done)
    # one run folder per good request (the refused one made none, and started no kernel)
    assert len(run_folders(project)) == 2 and all(run_status(d) == "succeeded" for d in run_folders(project))
    logs = portal.rows(RunLog)
    assert sorted((log.run_id, log.status, log.trigger, log.request_id, log.publication_id) for log in logs) == sorted(
        (r.run_id, "succeeded", "request", r.id, r.publication_id) for r in done)
    assert {tuple(log.parameters.items()) for log in logs} == {(("n", 1),), (("n", 2),)}  # shown to readers: no gate path
    [profile] = portal.rows(ReportProfile)
    assert [p["name"] for p in profile.parameters] == ["n", "gate"] and profile.parameters[0]["label"] == "how many"
    assert profile.owners == ["analyst@example.com"] and profile.runnable
    said = "".join(output(w) for w in workers)
    assert said.count(": succeeded: ") == 2 and "stopped" in said
    assert f"request {refused}: failed: parameter 'n': got 'zebra', expected int" in said
    assert portal.token not in said


# --- cancel, a failed run, signals, a killed worker ---------------------------------------------


def test_a_cancelled_or_lost_request_stops_its_kernel_and_the_next_one_fails_with_its_masked_notebook(portal, project, proof):
    proof.case("faults", "a request cancelled on the portal, or given to another worker, while its kernel runs",
               "the kernel is stopped at the next heartbeat, run.json says cancelled, nothing is published, the "
               "worker goes on; a failed run's notebook reaches the portal masked, no canary anywhere")
    canaries = Canaries()
    gated_report(project)
    make_notebook(project.notebooks_dir / "leaky.ipynb", PARAMS, LEAKY, RAISES)
    # the credentials come from the spec (the form never offers them); the requester sets n
    (project.notebooks_dir / "leaky.yml").write_text(yaml.safe_dump({"parameters": {"db_url": canaries.url,
                                                                                     "api_token": canaries.token}}))
    gate = project.root / "gate"
    gate.touch()  # never opened: only the cancel ends this run
    cancelled = portal.queue("quick", {"gate": str(gate)})
    worker = start_worker(project, portal, env=canaries.env)
    try:
        running_in(portal, cancelled, process=worker)
        portal.update(cancelled, cancel_requested=True)  # what the requester's Cancel button stores
        request = wait_for(lambda: (r := portal.request(cancelled)).status in FINAL and r, timeout=30,
                           what="the request ends after its cancel", process=worker)
        assert request.status == "cancelled"
        [run_dir] = run_folders(project)
        assert run_status(run_dir) == "cancelled"
        # the worker goes on. A request the portal gave to another worker meanwhile (409 lease_lost):
        # its run stops, and the request is left to its new owner
        stolen = portal.queue("quick", {"gate": str(gate)})
        running_in(portal, stolen, process=worker)
        portal.update(stolen, lease_owner="elsewhere:1")
        wait_for(lambda: len(run_folders(project)) == 2 and run_status(run_folders(project)[1]) == "cancelled", timeout=30,
                 what="the run of the lost request stops", process=worker)
        assert (portal.request(stolen).status, portal.request(stolen).lease_owner) == ("running", "elsewhere:1")
        # next: a request that fails in the notebook, with canaries on the way
        failed = portal.queue("leaky", {"n": 2})
        request = wait_for(lambda: (r := portal.request(failed)).status in FINAL and r, timeout=60,
                           what="the next request ends", process=worker)
    finally:
        worker.send_signal(signal.SIGTERM)
    assert finished(worker) == 0, output(worker)
    assert "cancelled on the portal" in output(worker)
    assert output(worker).count(f"request {stolen}: the portal gave it to another worker or ended it") == 1
    assert request.status == "failed" and f"login failed: {canaries.masked_url} token=*** password=***" in request.error_line
    logs = portal.rows(RunLog)
    assert sorted(log.run_id for log in logs if log.status == "cancelled") == [d.name for d in run_folders(project)[:2]]
    [log] = [log for log in logs if log.status == "failed"]
    assert (log.trigger, log.request_id, log.run_id) == ("request", request.id, request.run_id)
    with portal.app.app_context():
        html = gzip.decompress(db.session.get(RunLog, log.id).notebook_html).decode()
        # every row but the requests themselves (what a user types into the form is the portal's to keep)
        stored = "\n".join(repr(row) for table in db.metadata.sorted_tables if table.name != "run_requests"
                           for row in db.session.execute(sa.select(table)).all())
    assert "login failed: postgresql://bob:***@db.example.org/events" in html.replace("&#x27;", "'")
    assert [v for v in canaries.values if v in html or v in stored or v in output(worker)] == []


def test_a_stopped_worker_hands_its_request_back_and_a_killed_one_loses_it_to_the_lease(portal, project, proof):
    proof.case("faults", "nbpress worker SIGTERMed, then another SIGKILLed, mid-run",
               "SIGTERM: the request is queued again at once (exit 0); SIGKILL: queued again when the lease "
               "lapses; a third worker finishes it (attempt 3), never stuck running")
    gated_report(project)
    gate = project.root / "gate"
    gate.touch()
    public_id = portal.queue("quick", {"gate": str(gate)})
    first = start_worker(project, portal)
    running_in(portal, public_id, process=first)
    second = start_worker(project, portal)  # polling already: it takes whatever is queued
    # SIGTERM: the kernel is stopped, the request finished failed + transient: the portal queues it at once
    first.send_signal(signal.SIGTERM)
    assert finished(first, timeout=30) == 0, output(first)
    assert f"request {public_id}: queued (the worker was stopped before the run finished" in output(first)
    request = running_in(portal, public_id, process=second)
    assert (request.attempts, request.lease_owner.endswith(f":{second.pid}")) == (2, True)
    third = start_worker(project, portal)
    # SIGKILL: nothing is said; the lease lapses and the portal queues it again (never stuck running;
    # the killed worker's own run.json stays "running": nobody was left to write it)
    os.killpg(second.pid, signal.SIGKILL)  # the worker and its kernel: the whole session, as a lost machine
    second.wait(timeout=10)
    gate.unlink()
    assert portal.request(public_id).status == "running"  # until the lease passes
    try:  # the third worker's claims sweep the lapsed lease: queued again, then taken and finished
        request = wait_for(lambda: (r := portal.request(public_id)).status in FINAL and r, timeout=60,
                           what="the request ends after the killed worker's lease lapsed", process=third)
    finally:
        third.send_signal(signal.SIGTERM)
    assert finished(third) == 0, output(third)
    assert (request.status, request.attempts) == ("succeeded", 3)
    assert f"request {public_id}: succeeded" in output(third)
    assert sorted(run_status(d) for d in run_folders(project)) == ["cancelled", "running", "succeeded"]


# --- bad input: one line, before the portal hears of the worker ------------------------------------


@pytest.mark.parametrize(("args", "env", "code", "line"), [
    (["-p", "nosuch=1"], {"NBPRESS_PUBLISH_TOKEN": "t"}, 2, "-p nosuch: no report served here has this parameter"),
    (["-p", "n=zebra"], {"NBPRESS_PUBLISH_TOKEN": "t"}, 2, "parameter 'n': got 'zebra', expected int"),
    (["--report", "nosuch"], {"NBPRESS_PUBLISH_TOKEN": "t"}, 2, "no report named 'nosuch' in "),
    ([], {}, 1, "no publisher token: set NBPRESS_PUBLISH_TOKEN or put token = "),
    (["--portal", "http://reports.example.org"], {"NBPRESS_PUBLISH_TOKEN": "t"}, 1,
     "refusing to send the publisher token over plain HTTP to reports.example.org"),
])
def test_bad_input_is_one_line_before_anything_is_sent(project, monkeypatch, args, env, code, line):
    from click.testing import CliRunner

    from toolkit.cli import main

    gated_report(project)
    for name in [k for k in os.environ if k.startswith("NBPRESS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(project.root))
    portal_args = [] if "--portal" in args else ["--portal", "http://127.0.0.1:9"]  # nothing listens: nothing may be sent
    result = CliRunner(env=env).invoke(main, ["--project", str(project.root), "worker", *portal_args, *args])
    assert result.exit_code == code, result.output
    [said] = result.output.splitlines()
    assert said.startswith("nbpress: error: " + line), said
