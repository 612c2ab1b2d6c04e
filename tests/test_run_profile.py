"""A report's profile for the portal: the parameter form for every kind, the schedule in words.

Read from real notebooks and specs (no kernel): the JSON is what the portal builds its Run form
from and checks values with, so each kind's shape is pinned here.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from tests.conftest import make_notebook
from toolkit.deliver.run_profile import MAX_NEXT_RUNS, form_names, parameter_schema, report_profile, schedule_text
from toolkit.inputs.prepare import read_inputs
from toolkit.inputs.params import read_schema
from toolkit.inputs.spec import ReportSpec, Schedule, load_spec

CELL = """
import datetime
from typing import Literal, Optional
from toolkit import Secret
week: datetime.date = datetime.date(2026, 11, 16)  # ISO week to report
at: datetime.datetime = datetime.datetime(2026, 11, 16, 8, 30)
regions: list[Literal["north", "south"]] = ["north"]
sizes: list[int] = [1, 2]
status: Literal["all", "ok", "error"] = "all"  # which events
level: Literal[1, 2, 3] = 1
top_n: int = 10
ratio: float = 0.5
flag: bool = False
name: str
limit: Optional[int] = None
db_password: Secret = ""
api_token: str = ""
db_url: str = ""
"""


@pytest.fixture
def report(project):
    make_notebook(project.notebooks_dir / "weekly.ipynb", CELL, "print(week)")
    spec = {"title": "Weekly", "owner": "analyst@example.com",
            "parameters": {"top_n": 5, "name": "all events", "db_url": "postgresql://bob:hunter2@db/events"},
            "schedule": {"cron": "0 6 * * MON", "timezone": "Europe/Berlin"}}
    (project.notebooks_dir / "weekly.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return load_spec(project.notebooks_dir / "weekly.yml")


def test_every_parameter_kind_in_cell_order_with_the_specs_defaults_and_no_secret_or_credential(report):
    fields = report_profile(report)["parameters"]
    assert [f["name"] for f in fields] == ["week", "at", "regions", "sizes", "status", "level", "top_n", "ratio", "flag",
                                          "name", "limit"]
    by = {f["name"]: f for f in fields}
    assert by["week"] == {"name": "week", "label": "ISO week to report", "type": {"kind": "date", "optional": False},
                          "required": False, "default": "2026-11-16"}
    assert by["at"]["type"] == {"kind": "datetime", "optional": False} and by["at"]["default"] == "2026-11-16T08:30:00"
    assert by["regions"] == {"name": "regions", "label": "", "required": False, "default": ["north"], "type": {
        "kind": "list", "optional": False, "item": {"kind": "literal", "choices": ["north", "south"], "optional": False}}}
    assert by["sizes"]["type"]["item"] == {"kind": "int", "optional": False} and by["sizes"]["default"] == [1, 2]
    assert by["status"]["type"] == {"kind": "literal", "choices": ["all", "ok", "error"], "optional": False}
    assert by["status"]["label"] == "which events"
    assert by["level"]["type"]["choices"] == [1, 2, 3]
    assert (by["top_n"]["type"]["kind"], by["top_n"]["default"]) == ("int", 5)  # the spec's default wins
    assert (by["ratio"]["type"]["kind"], by["ratio"]["default"]) == ("float", 0.5)
    assert (by["flag"]["type"]["kind"], by["flag"]["default"]) == ("bool", False)
    assert (by["name"]["required"], by["name"]["default"]) == (False, "all events")  # required in the notebook, set by the spec
    assert by["limit"] == {"name": "limit", "label": "", "type": {"kind": "int", "optional": True}, "required": False,
                           "default": None}
    # a Secret, a secret-looking name and a location are not the requester's to set (toolkit.inputs.settable)
    assert form_names(report, read_inputs(report).schema) == set(by)
    assert "hunter2" not in json.dumps(fields)  # JSON as it is, no custom encoder


def test_a_required_parameter_has_no_default_and_the_workers_values_come_first(tmp_path):
    notebook = make_notebook(tmp_path / "nb.ipynb", "import datetime\nweek: datetime.date  # the Monday\nn: int = 1")
    spec, schema = ReportSpec(name="nb", title="Nb", notebook=notebook, parameters={"n": 2}), read_schema(notebook)
    assert parameter_schema(spec, schema) == [
        {"name": "week", "label": "the Monday", "type": {"kind": "date", "optional": False}, "required": True},
        {"name": "n", "label": "", "type": {"kind": "int", "optional": False}, "required": False, "default": 2}]
    assert [f.get("default") for f in parameter_schema(spec, schema, {"n": 3, "week": dt.date(2026, 11, 9)})] == ["2026-11-09", 3]


def test_the_specs_run_parameters_choose_the_form(report):
    spec = report.model_copy(update={"run_parameters": ["status", "week"]})
    assert [f["name"] for f in report_profile(spec)["parameters"]] == ["week", "status"]  # in the notebook's order


def test_the_profile_carries_title_owners_schedule_and_the_next_fire_times_in_utc(report):
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)
    profile = report_profile(report, now=now)
    assert (profile["title"], profile["owners"], profile["runnable"]) == ("Weekly", ["analyst@example.com"], True)
    assert profile["schedule"] == {"cron": "0 6 * * MON", "timezone": "Europe/Berlin",
                                   "text": "every Monday at 06:00 (Europe/Berlin)"}
    assert len(profile["next_runs"]) == MAX_NEXT_RUNS
    assert profile["next_runs"][:2] == ["2026-12-07T05:00:00Z", "2026-12-14T05:00:00Z"]  # 06:00 CET is 05:00 UTC
    assert set(profile) == {"title", "parameters", "schedule", "next_runs", "owners", "runnable"}


def test_a_report_whose_required_credential_has_no_default_is_not_runnable_and_without_a_schedule_none_is_sent(project):
    make_notebook(project.notebooks_dir / "plain.ipynb", "n: int = 1\napi_key: str", "print(n)")
    (project.notebooks_dir / "plain.yml").write_text("title: Plain\n", encoding="utf-8")
    spec = load_spec(project.notebooks_dir / "plain.yml")
    profile = report_profile(spec)
    assert (profile["schedule"], profile["next_runs"], profile["owners"], profile["runnable"]) == ({}, [], [], False)
    assert [p["name"] for p in profile["parameters"]] == ["n"]  # api_key is never offered: no form could run it
    (project.notebooks_dir / "plain.yml").write_text("title: Plain\nparameters: {api_key: k}\n", encoding="utf-8")
    assert report_profile(load_spec(project.notebooks_dir / "plain.yml"))["runnable"] is True


@pytest.mark.parametrize(("cron", "timezone", "text"), [
    ("0 6 * * MON", "Europe/Berlin", "every Monday at 06:00 (Europe/Berlin)"),
    ("30 7 * * *", "UTC", "every day at 07:30 (UTC)"),
    ("0 6 * * mon-fri", "UTC", "every Monday to Friday at 06:00 (UTC)"),
    ("0 6 * * MON,WED,FRI", "UTC", "every Monday, Wednesday and Friday at 06:00 (UTC)"),
    ("0 6,18 * * *", "UTC", "every day at 06:00 and 18:00 (UTC)"),
    ("15 5 1 * *", "UTC", "on day 1 of every month at 05:15 (UTC)"),
    ("5 * * * *", "UTC", "every hour at minute 5 (UTC)"),
    # no sentence that could be wrong: numbered weekdays (APScheduler 3 counts from Monday), steps, months
    ("0 6 * * 1", "UTC", "cron '0 6 * * 1' (UTC)"),
    ("*/15 * * * *", "UTC", "cron '*/15 * * * *' (UTC)"),
    ("0 6 1 1 *", "UTC", "cron '0 6 1 1 *' (UTC)"),
    ("0 6 * 1-3 MON", "UTC", "cron '0 6 * 1-3 MON' (UTC)"),
])
def test_the_schedule_in_words_or_the_raw_cron(cron, timezone, text):
    assert schedule_text(Schedule(cron=cron, timezone=timezone)) == text


def test_a_label_is_the_parameters_comment_else_what_the_pdf_calls_it(report):
    spec = report.model_copy(update={"show_parameters": {"week": "Week", "regions": "Regions"}, "run_parameters": ["week", "regions"]})
    labels = {f["name"]: f["label"] for f in report_profile(spec)["parameters"]}
    assert labels == {"week": "ISO week to report", "regions": "Regions"}
