"""A run's log line and its executed notebook as HTML, from a real failed run with canaries.

The HTML is what owners open on the portal: built from the executed notebook the pipeline
masked, it must hold the masked output and no canary (the rules of tests/test_canaries.py).
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.conftest import ROOT, make_notebook
from tests.test_canaries import LEAKY, PARAMS, RAISES, Canaries
from toolkit.deliver.run_log import log_run, notebook_html, one_line, run_log_body
from toolkit.deliver.portal_client import PublishConfig
from toolkit.errors import ExecutionError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import load_spec
from toolkit.project import Project
from toolkit.runs.pipeline import run_report
from toolkit.runs.run_folder import load_run


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """One real failed run shared by the tests (a kernel start is the slow part)."""
    canaries = Canaries()
    project = Project(tmp_path_factory.mktemp("runlog"))
    shutil.copytree(ROOT / "templates", project.templates_dir)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("NBPRESS_SECRET_DB_PASSWORD", canaries.secret)
        return _failed_run(project, canaries)


def _failed_run(project, canaries):
    make_notebook(project.notebooks_dir / "leaky.ipynb", PARAMS, LEAKY, RAISES)
    (project.notebooks_dir / "leaky.yml").write_text(yaml.safe_dump({"show_parameters": {"n": "Count", "db_url": "Database"}}))
    spec = load_spec(project.notebooks_dir / "leaky.yml")
    with pytest.raises(ExecutionError) as caught:
        run_report(prepare(spec, {"db_url": canaries.url, "api_token": canaries.token, "n": 3}), project, trigger="schedule")
    return caught.value.run_dir, spec, canaries


def test_the_log_line_of_a_failed_run_shows_what_readers_see_and_no_canary(failed_run):
    run_dir, spec, canaries = failed_run
    body = run_log_body(load_run(run_dir), spec, request_id="req-1")
    assert (body["status"], body["trigger"], body["request"], body["run_id"]) == ("failed", "schedule", "req-1", run_dir.name)
    assert body["parameters"] == {"Count": 3, "Database": canaries.masked_url}  # the spec's labels, the password masked
    assert f"login failed: {canaries.masked_url} token=*** password=***" in body["error_line"]
    assert "\n" not in body["error_line"] and len(body["error_line"]) <= 500
    assert body["started_at"].endswith("Z") and body["finished_at"].endswith("Z") and body["duration_seconds"] > 0
    assert "publication" not in body
    assert not [v for v in canaries.values if v in repr(body)]


def test_the_executed_notebook_as_html_keeps_the_masked_output_and_no_canary(failed_run):
    run_dir, _spec, canaries = failed_run
    html = notebook_html(run_dir).decode("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert f"login failed: {canaries.masked_url} token=*** password=***" in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert [v for v in canaries.values if v in html] == []


def test_a_portal_that_is_not_there_costs_a_warning_line_not_the_run(failed_run, caplog):
    run_dir, spec, _canaries = failed_run
    from tests.helpers import free_port

    config = PublishConfig(f"http://127.0.0.1:{free_port()}", "tok")
    assert log_run(config, run_dir, spec) is False
    assert load_run(run_dir).status == "failed"
    [line] = [r.getMessage() for r in caplog.records if r.name == "nbpress.runlog"]
    assert line.startswith(f"run log of {run_dir.name} not sent to the portal: portal unreachable at http://127.0.0.1:")
    assert "tok" not in line


def test_the_error_line_is_one_printable_line_without_colour_codes_or_url_passwords():
    text = "\x1b[0;31mValueError\x1b[0m: bad\x07 value for postgresql://bob:hunter2@db/events\nTraceback ..."
    assert one_line(text) == "ValueError: bad value for postgresql://bob:***@db/events"
    assert len(one_line("x" * 900)) == 500
