"""The demo: event data -> Weekly Statistics PDFs for recent weeks -> a local portal serving them,
and the demo's own ``nbpress worker`` running the report when the demo recipient asks for it.

The portal runs as its own process (``python -m publish_server.admin``); the toolkit talks to it
only through its command line and its HTTP API, as any publisher would.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..deliver.portal_client import publish_run
from ..errors import NbpressError
from ..inputs.prepare import read_inputs
from ..inputs.spec import find_report
from ..progress import run_progress
from ..project import Project
from ..runs.pipeline import run_report
from .demo_data import generate

__all__ = ["build_demo_runs", "DemoPortal", "run_demo"]

DEMO_EMAIL = "demo@example.org"
DEMO_GROUP = "demo"
REPORT = "weekly_statistics"


def run_demo(project: Project, weeks: int, *, serve: bool, port: int, say: Callable[[str], None]) -> None:
    """``nbpress demo``: the runs, then (with ``serve``) a local portal publishing them until Ctrl-C."""
    run_dirs = build_demo_runs(project, weeks, say)
    say(f"{len(run_dirs)} PDFs under {project.runs_dir / 'weekly_statistics'}")
    if not serve:
        return
    portal = DemoPortal(project, port=port)
    portal.start()
    try:
        email, password = portal.demo_recipient()
        token = portal.publisher_token()
        portal.publish(run_dirs, token, say)
        portal.start_worker(token)
    except BaseException:
        portal.stop()
        raise
    say(f"\nPortal: {portal.url}/  (development server, mail goes to {portal.instance / 'outbox'})")
    say(f"Sign in as {email} with the password {password}  (shown once)")
    say(f"Run Weekly Statistics from its page: the demo's worker takes the request (log: {portal.instance / 'worker.log'})")
    say("Ctrl-C stops the portal and the worker.")
    portal.wait()


def build_demo_runs(project: Project, weeks: int, say: Callable[[str], None]) -> list[Path]:
    """Generate the demo data and run the report for the last ``weeks`` weeks."""
    database = (project.root / "data" / "events.sqlite").resolve()
    summary = generate(database)
    say(f"demo data: {summary.path} ({summary.rows:,} events, {summary.first_day} .. {summary.last_day})")
    inputs = read_inputs(find_report("weekly_statistics", project.notebooks_dir))
    run_dirs = []
    for week in summary.weeks[-weeks:]:
        prepared = inputs.prepare({"week": week, "database_url": f"sqlite:///{database}"})
        with run_progress(f"week {week}") as progress:
            run_dir, record = run_report(prepared, project, progress=progress)
        run_dirs.append(run_dir)
        say(f"week of {week}: {run_dir / 'report.pdf'} ({record.pages} pages)")
    return run_dirs


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class DemoPortal:
    """A development portal in ``<project>/instance`` with a demo recipient and publisher."""

    project: Project
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self):
        self.port = self.port or _free_port(self.host)
        self.instance = self.project.root / "instance"
        self.env = {**os.environ, "NBPRESS_INSTANCE": str(self.instance)}
        self.process: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None  # `nbpress worker`, serving the demo report's Run button

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _admin(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "publish_server.admin", *args],
            input=stdin, capture_output=True, text=True, env=self.env, timeout=120,
        )
        if result.returncode != 0:
            raise NbpressError(f"portal {args[0]} {args[1] if len(args) > 1 else ''}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
        return result.stdout

    def start(self) -> None:
        """Start the server (it writes dev secrets once and migrates) and wait until it answers."""
        self.instance.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = open(self.instance / "portal.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "publish_server.admin", "serve", "--dev", "--host", self.host, "--port", str(self.port)],
            env=self.env, stdout=log, stderr=log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NbpressError(f"the portal stopped while starting (see {log.name})")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise NbpressError("the portal did not start within 60 s")

    def demo_recipient(self) -> tuple[str, str]:
        """Create (or reset) the demo recipient with a fresh random password; returns it once."""
        password = secrets.token_urlsafe(12)
        if DEMO_GROUP not in self._admin("groups", "list").split():
            self._admin("groups", "add", DEMO_GROUP)
        users = self._admin("users", "list")
        if DEMO_EMAIL in users:  # a second demo: a new one-time password, old sessions end
            out = self._admin("users", "reset-password", DEMO_EMAIL)
            password = out.split("one-time password:", 1)[1].strip().split()[0]
        else:
            self._admin("users", "add", DEMO_EMAIL, "--name", "Demo Recipient", "--group", DEMO_GROUP, "--password-stdin", stdin=password + "\n")
        return DEMO_EMAIL, password

    def publisher_token(self) -> str:
        out = self._admin("tokens", "create", f"demo-{int(time.time())}")
        return out.split("token:", 1)[1].strip().split()[0]

    def publish(self, run_dirs: list[Path], token: str, say: Callable[[str], None]) -> None:
        for run_dir in run_dirs:
            result = publish_run(run_dir, self.url, token, audience={"groups": [DEMO_GROUP]})
            readers = f" (readable by {result.readers_text()})" if result.readers_text() else ""
            say(f"published {result.name}: {result.link}{readers}")

    def start_worker(self, token: str) -> None:
        """The demo group may run the report; ``nbpress worker`` serves it (the data is the worker's ``-p``:
        no request chooses it). Its own process, as on a machine holding the notebooks."""
        self._admin("grant", "--report", REPORT, "--group", DEMO_GROUP, "--run")
        database = (self.project.root / "data" / "events.sqlite").resolve()
        log = open(self.instance / "worker.log", "ab")
        command = [sys.executable, "-c", "from toolkit.cli import main; main()", "--project", str(self.project.root), "worker",
                   "--portal", self.url, "--report", REPORT, "-p", f"database_url=sqlite:///{database}", "--poll", "1"]
        # the token in the environment, never on the command line (`ps` shows that)
        self.worker = subprocess.Popen(command, env={**os.environ, "NBPRESS_PUBLISH_TOKEN": token}, stdout=log, stderr=log,
                                       stdin=subprocess.DEVNULL)
        log.close()

    def wait(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then stop the portal too."""
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        for process in (self.worker, self.process):  # the worker first: it hands a running request back
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30 if process is self.worker else 10)
                except subprocess.TimeoutExpired:
                    process.kill()
