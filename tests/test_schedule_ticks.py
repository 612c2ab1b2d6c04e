"""Scheduled ticks that publish to a REAL portal on loopback, and a tick that runs a grid batch."""

from __future__ import annotations

import yaml

from tests.conftest import make_notebook
from tests.portal.test_publishing import serve
from tests.helpers import free_port
from tests.test_publish_client import Scripted, portal_app  # noqa: F401 - the fixture
from toolkit.deliver.owner_notice import RecordingMailer
from toolkit.deliver.portal_client import PublishConfig
from toolkit.runs.history import history
from toolkit.runs.run_folder import load_run
from toolkit.scheduler.tick import Settings, run_tick


def report(project, name: str, code: str, **spec) -> None:
    make_notebook(project.notebooks_dir / f"{name}.ipynb", "n: int = 3\nregion: str = 'north'",
                  "import toolkit as tk\n" + code)
    spec = {"owner": "owner@example.com", "schedule": {"cron": "0 6 * * *"}, **spec}
    (project.notebooks_dir / f"{name}.yml").write_text(yaml.safe_dump(spec))


def test_a_portal_answering_503_once_is_retried_and_the_run_is_published(project, portal_app, proof):  # noqa: F811
    proof.case("faults", "portal answers 503 while a scheduled run publishes",
               "the upload is retried (not the notebook) and the run ends published, version 1")
    report(project, "pub", 'tk.metric("n", n, label="N")', retries={"max": 1, "backoff": 0.01})
    flaky = Scripted(portal_app, 503)
    with serve(flaky) as url:
        result = run_tick(project, "pub", Settings(publish=PublishConfig(url, portal_app.config["TEST_PUBLISHER_TOKEN"])))
    assert result.status == "succeeded", result.message
    assert flaky.requests == 3  # the upload twice (503, then published), then the run's log line
    [run_dir] = result.runs  # the notebook ran once
    record = load_run(run_dir)
    assert record.publication is not None and record.publication.version == 1
    [row] = history(project.runs_dir, "pub")
    assert row.as_json()["publication"]["url"].startswith(url)


def test_an_unreachable_portal_fails_the_run_and_tells_the_owner(project, proof):
    proof.case("faults", "portal down while a scheduled run publishes",
               "the upload is retried, then the run is failed at stage publish with its PDF kept and the owner is told; no token in the mail")
    report(project, "nopub", 'tk.metric("n", n, label="N")', retries={"max": 1, "backoff": 0.01})
    mailer = RecordingMailer()
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_tick(project, "nopub", Settings(publish=PublishConfig(closed, "nbp_token-never-shown"), mailer=mailer))
    assert result.status == "failed" and "portal unreachable" in result.message
    [run_dir] = result.runs  # one run: publishing was retried, not the notebook
    record = load_run(run_dir)
    assert (record.status, record.error.stage) == ("failed", "publish") and (run_dir / "report.pdf").is_file()
    [mail] = mailer.sent
    assert "Error in stage 'publish': portal unreachable" in mail.body and "after 2 attempts" in mail.body
    assert "nbp_token-never-shown" not in mail.body + result.message


DIES_ONCE_IN_THE_SOUTH = """
import os, pathlib
marker = pathlib.Path(f"died-{region}")
if region == "south" and not marker.exists():
    marker.write_text("died")
    os._exit(1)
tk.metric("n", n, label=f"Region {region}")
"""


def test_a_grid_tick_runs_the_batch_and_retries_only_the_member_whose_kernel_died(project):
    report(project, "regions", DIES_ONCE_IN_THE_SOUTH, grid={"region": ["north", "south"]},
           retries={"max": 2, "backoff": 0.05})
    mailer = RecordingMailer()
    result = run_tick(project, "regions", Settings(mailer=mailer, workers=1))  # one worker: fewer processes
    assert result.status == "succeeded" and result.message == "2 of 2 members succeeded"
    records = [load_run(d) for d in result.runs]
    seen = sorted((r.parameters["region"], r.attempt, r.status) for r in records)
    assert seen == [("north", 1, "succeeded"), ("south", 1, "failed"), ("south", 2, "succeeded")]
    assert {r.trigger for r in records} == {"schedule"} and mailer.sent == []
