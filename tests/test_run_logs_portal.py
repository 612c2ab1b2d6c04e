"""What the other ways of running tell a REAL portal: the schedule daemon's profiles at start,
the log lines of a scheduled tick and of ``nbpress run --publish``.

``nbpress worker``'s own requests are in tests/test_run_worker.py; the portal's side of these
endpoints in tests/portal/test_run_requests_api.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from publish_server.extensions import db
from publish_server.models import Publication, ReportProfile, RunLog
from tests.conftest import make_notebook
from tests.portal.test_publishing import serve
from tests.helpers import free_port, wait_for
from tests.test_publish_client import portal, portal_app  # noqa: F401 (fixtures: a live portal)
from toolkit.cli import main
from toolkit.deliver.portal_client import PublishConfig
from toolkit.errors import LeaseLostError
from toolkit.deliver.run_profile import send_profiles
from toolkit.deliver.run_reports import PortalRuns
from toolkit.inputs.spec import find_report
from toolkit.scheduler import tick
from toolkit.scheduler.tick import Settings


def rows(portal, model) -> list:  # noqa: F811
    with portal.app.app_context():
        found = list(db.session.scalars(sa.select(model)))
        for row in found:
            db.session.expunge(row)
        return found


def test_the_schedule_daemon_sends_its_reports_profiles_at_start(portal, project):  # noqa: F811
    make_notebook(project.notebooks_dir / "weekly.ipynb", "import datetime\nweek: datetime.date = datetime.date(2026, 11, 16)  # the Monday",
                  "print(week)")
    (project.notebooks_dir / "weekly.yml").write_text(yaml.safe_dump({
        "title": "Weekly", "owner": "analyst@example.com", "schedule": {"cron": "0 6 * * MON", "timezone": "Europe/Berlin"}}))
    exe = Path(sys.executable).with_name("nbpress")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}, "HOME": str(project.root),
           "NBPRESS_PUBLISH_TOKEN": portal.token, "NBPRESS_PORTAL_URL": portal.url}
    daemon = subprocess.Popen([str(exe), "schedule"], cwd=project.root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        [profile] = wait_for(lambda: rows(portal, ReportProfile), timeout=60, what="the profile on the portal", process=daemon)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    said = daemon.stderr.read()
    assert "profiles of 1 of 1 scheduled reports sent to the portal" in said, said
    assert profile.schedule == {"cron": "0 6 * * MON", "timezone": "Europe/Berlin", "text": "every Monday at 06:00 (Europe/Berlin)"}
    assert len(profile.next_runs) == 10 and profile.owners == ["analyst@example.com"]
    assert profile.parameters == [{"name": "week", "label": "the Monday", "type": {"kind": "date", "optional": False},
                                   "required": False, "default": "2026-11-16"}]
    assert portal.token not in said


def test_a_scheduled_tick_and_a_manual_run_leave_their_log_lines(portal, project, monkeypatch):  # noqa: F811
    make_notebook(project.notebooks_dir / "broken.ipynb", "n: int = 1", "raise ValueError(f'no data for {n}')")
    (project.notebooks_dir / "broken.yml").write_text(yaml.safe_dump({"schedule": {"cron": "0 6 * * *", "timezone": "UTC"}}))
    config = PublishConfig(portal.url, portal.token)
    # the report as the daemon described it at its start, long ago
    PortalRuns(config).put_profile("broken", {"title": "Broken", "next_runs": ["2020-01-01T06:00:00Z"]})
    monkeypatch.setattr(tick, "_settings", Settings(publish=config))
    tick.scheduled_tick(str(project.root), "broken")  # what APScheduler calls at a fire time
    [profile] = rows(portal, ReportProfile)
    assert len(profile.next_runs) == 10 and profile.next_runs[0] > dt.datetime.now(dt.timezone.utc).isoformat()[:19]
    [run_dir] = (project.runs_dir / "broken").iterdir()
    make_notebook(project.notebooks_dir / "fine.ipynb", "n: int = 1", "import toolkit as tk\ntk.metric('n', n, label='N')")
    runner = CliRunner(env={"NBPRESS_PUBLISH_TOKEN": portal.token})
    done = runner.invoke(main, ["--project", str(project.root), "run", "fine", "-p", "n=4", "--publish", "--portal", portal.url])
    assert done.exit_code == 0, done.output
    logs = {log.trigger: log for log in rows(portal, RunLog)}
    assert set(logs) == {"schedule", "manual"}
    failed, manual = logs["schedule"], logs["manual"]
    assert (failed.status, failed.run_id, failed.parameters) == ("failed", run_dir.name, {"n": 1})
    assert "no data for 1" in failed.error_line and failed.duration_seconds > 0 and failed.publication_id is None
    [publication] = rows(portal, Publication)
    assert (manual.status, manual.parameters, manual.publication_id, manual.error_line) == ("succeeded", {"n": 4}, publication.id, "")
    with portal.app.app_context():
        notebook = db.session.get(RunLog, failed.id).notebook_html
        assert db.session.get(RunLog, manual.id).notebook_html is None  # only a run that did not get through sends it
    assert "no data for 1" in gzip.decompress(notebook).decode()


def test_profiles_a_portal_did_not_take_are_kept_for_later_with_one_warning(portal, project, caplog):  # noqa: F811
    for name in ("one", "two"):
        make_notebook(project.notebooks_dir / f"{name}.ipynb", "n: int = 1", "print(n)")
    specs = [find_report(name, project.notebooks_dir) for name in ("one", "two")]
    away = PortalRuns(PublishConfig(f"http://127.0.0.1:{free_port()}", portal.token), retries=0)
    assert send_profiles(away, specs) == specs  # tried once, for the first report only
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "nbpress.profile"] == ["profiles not sent to the portal"]
    assert send_profiles(PortalRuns(PublishConfig(portal.url, portal.token)), specs) == []  # the worker sends them again
    assert sorted(p.report_id for p in rows(portal, ReportProfile)) == [1, 2]


def test_a_409_conflict_is_tried_again_and_a_409_lease_lost_is_not(portal):  # noqa: F811
    answers = [("conflict", "The report was being described by others at the same moment; try again."),
               ("lease_lost", "This run request is not running under this worker any more.")]
    seen = []

    def racing(environ, start_response):  # the portal behind one scripted 409 per request kind
        seen.append(environ["PATH_INFO"])
        if len(seen) in (1, 3):
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            code, message = answers[0 if len(seen) == 1 else 1]
            start_response("409 Conflict", [("Content-Type", "application/json")])
            return [json.dumps({"error": code, "message": message}).encode()]
        return portal.app(environ, start_response)

    with serve(racing) as url:
        runs = PortalRuns(PublishConfig(url, portal.token), backoff=0.01)
        assert runs.put_profile("racy", {"title": "Racy"})["report"] == "racy"
        with pytest.raises(LeaseLostError, match="another worker or ended it: This run request is not running"):
            runs.progress("abc", "host:1", "execute")
    assert seen == ["/api/v1/reports/racy/profile"] * 2 + ["/api/v1/run-requests/abc/progress"]
