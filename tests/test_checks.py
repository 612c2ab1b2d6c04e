"""Data checks: evaluated on the records, a failure blocks the run and tells the owner."""

from __future__ import annotations

import json
from email import message_from_bytes

import pandas as pd
import pytest
import yaml

from tests.conftest import cli, make_notebook
from tests.helpers import table_record
from toolkit.checks import DataCheck, run_checks
from toolkit.deliver.owner_notice import RecordingMailer, notify_owner
from toolkit.deliver.portal_client import publish_run
from toolkit.errors import DataCheckError, PublishError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import find_report
from toolkit.notebook import records as rec
from toolkit.runs.pipeline import run_report
from toolkit.runs.run_folder import load_run


_table = table_record


def test_checks_on_tables_and_metrics():
    frame = pd.DataFrame({"a": [1.0, None, 3.0], "b": [1, 2, 3]}, index=pd.Index(["x", None, "z"], name="label"))
    records = {"t": _table("t", frame), "m": rec.Metric("m", 7.5), "s": rec.Metric("s", "n/a")}
    checks = [
        DataCheck(table="t", min_rows=3),
        DataCheck(table="t", min_rows=4, not_null=["b", "a", "label", "zz"]),
        DataCheck(table="missing", min_rows=1),
        DataCheck(metric="m", min=0, max=10),
        DataCheck(metric="m", max=5),
        DataCheck(metric="m", min=7.5),  # bounds are inclusive
        DataCheck(metric="s", min=0),
        DataCheck(metric="t", min=0),
    ]
    results = [(r.passed, r.detail) for r in run_checks(checks, records)]
    assert results == [
        (True, ""),
        (False, "3 rows; 1 missing in a; 1 missing in label; no column 'zz'"),
        (False, "no table named 'missing' was recorded"),
        (True, ""),
        (False, "value 7.5"),
        (True, ""),
        (False, "value 'n/a' is not a number"),
        (False, "no metric named 't' was recorded"),
    ]


@pytest.fixture
def checked_report(project):
    make_notebook(
        project.notebooks_dir / "checked.ipynb",
        "rows: int = 3\nrate: float = 1.0",
        """
        import pandas as pd, toolkit as tk
        tk.table("items", pd.DataFrame({"value": [1.0] * rows}))
        tk.metric("rate", rate)
        """,
    )
    spec = {"owner": "owner@example.com", "checks": [{"table": "items", "min_rows": 2}, {"metric": "rate", "max": 5}]}
    (project.notebooks_dir / "checked.yml").write_text(yaml.safe_dump(spec))
    return project


def test_a_failed_check_blocks_the_run_and_tells_the_owner(checked_report):
    project = checked_report
    spec = find_report("checked", project.notebooks_dir)
    with pytest.raises(DataCheckError) as info:
        run_report(prepare(spec, {"rows": 1, "rate": 9.0}), project)
    run_dir = info.value.run_dir
    assert str(info.value) == ("blocked by 2 failed data check(s): table items: at least 2 rows (1 rows); "
                               "metric rate: at most 5 (value 9)")
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["status"] == "blocked" and saved["error"]["stage"] == "checks"
    assert [c["passed"] for c in saved["checks"]] == [False, False]
    assert (run_dir / "executed.ipynb").exists()
    assert not (run_dir / "report.html").exists() and not (run_dir / "report.pdf").exists()
    with pytest.raises(PublishError, match="status: blocked"):
        publish_run(run_dir, "https://portal.example", "token")
    mailer = RecordingMailer()
    sent = notify_owner(run_dir, load_run(run_dir), spec.owner, mailer)
    assert mailer.sent == [sent] and sent.to == "owner@example.com" and "blocked by data checks" in sent.subject
    assert "table items: at least 2 rows: 1 rows" in sent.body and str(run_dir) in sent.body
    # a passing run records its checks too
    run_dir, record = run_report(prepare(spec, {}), project)
    assert record.status == "succeeded" and [c.passed for c in record.checks] == [True, True]
    assert notify_owner(run_dir, record, spec.owner, mailer) is None and len(mailer.sent) == 1


def test_cli_blocked_run_exits_1_and_leaves_the_notification_in_the_run_folder(checked_report):
    result = cli("run", "checked", "-p", "rows=0", cwd=checked_report.root)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("nbpress: error: blocked by 1 failed data check(s): table items")
    (run_dir,) = (checked_report.runs_dir / "checked").iterdir()
    message = message_from_bytes((run_dir / "notification.eml").read_bytes())
    assert message["To"] == "owner@example.com" and "checked blocked" in message["Subject"]
    assert "table items: at least 2 rows: 0 rows" in message.get_payload()
