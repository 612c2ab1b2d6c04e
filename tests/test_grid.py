"""Specs for unattended runs: grids, relative dates, schedules, audiences per variant, owners, retries."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.conftest import make_notebook
from tests.test_publish_client import FAST, make_run_dir, portal, portal_app  # noqa: F401 - fixtures
from toolkit.deliver.portal_client import publish_run
from toolkit.errors import SpecError, UsageError
from toolkit.inputs.grid import RelativeDates, expand, member_label, parse_grid_option, resolve_values
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import Audience, load_spec

D = dt.date


@pytest.mark.parametrize(
    "text, as_of, expected",
    [
        # weeks that ENDED before the as-of day, given by their Monday, oldest first
        ("last 2", D(2026, 11, 23), [D(2026, 11, 9), D(2026, 11, 16)]),  # Monday: last week is complete
        ("last 2", D(2026, 11, 22), [D(2026, 11, 2), D(2026, 11, 9)]),  # Sunday: this week has not ended
        ("last 1 week", D(2026, 11, 25), [D(2026, 11, 16)]),
        ("last 3 days", D(2026, 3, 1), [D(2026, 2, 26), D(2026, 2, 27), D(2026, 2, 28)]),
        ("last 2 months", D(2026, 1, 15), [D(2025, 11, 1), D(2025, 12, 1)]),
        ("  LAST 1   Months ", D(2026, 3, 31), [D(2026, 2, 1)]),
    ],
)
def test_relative_dates(text, as_of, expected):
    assert RelativeDates(text).resolve(as_of) == expected


@pytest.mark.parametrize("text", ["last", "last 0", "last four", "last 2 years", "next 2", "last 999"])
def test_relative_dates_refuse_nonsense(text):
    with pytest.raises(ValueError):
        RelativeDates(text)


def test_grid_options_and_expansion():
    assert parse_grid_option("region=north, south,north") == ("region", ["north", "south"])
    name, weeks = parse_grid_option("week=last 4")
    assert name == "week" and isinstance(weeks, RelativeDates) and weeks.count == 4
    assert parse_grid_option('sources=[["web"], ["api", "batch"]]') == ("sources", [["web"], ["api", "batch"]])
    for bad in ["region", "=a,b", "region=", "region=,", "sources=[1"]:
        with pytest.raises(UsageError):
            parse_grid_option(bad)
    values = resolve_values({"region": ["north", "south"], "week": RelativeDates("last 2")}, D(2026, 11, 23))
    members = expand(values)
    assert members == [
        {"region": "north", "week": D(2026, 11, 9)}, {"region": "north", "week": D(2026, 11, 16)},
        {"region": "south", "week": D(2026, 11, 9)}, {"region": "south", "week": D(2026, 11, 16)},
    ]
    assert member_label(members[1]) == "region=north week=2026-11-16"
    assert expand({}) == [{}]
    with pytest.raises(UsageError, match="narrow it"):
        expand({"a": list(range(200)), "b": list(range(200))})


FULL_SPEC = """
grid:
  region: [north, south]
  week: last 2
schedule:
  cron: "30 6 * * MON"
  timezone: Europe/Berlin
audience:
  groups: [managers]
  by:
    region: {north: [north-team], south: [south-team]}
    week: {2026-11-16: [auditors]}
retries: 2
owner: Ann@Example.com
checks:
  - {table: t, min_rows: 3, not_null: [a]}
  - {metric: m, min: 0, max: 5}
preload: [pandas, matplotlib.pyplot]
"""


@pytest.fixture
def notebooks(tmp_path):
    make_notebook(tmp_path / "weekly.ipynb", "import datetime\nregion: str = 'north'\nweek: datetime.date = datetime.date(2026, 1, 5)")
    return tmp_path


def test_a_full_spec_loads(notebooks):
    (notebooks / "weekly.yml").write_text(FULL_SPEC)
    spec = load_spec(notebooks / "weekly.yml")
    assert spec.grid["region"] == ["north", "south"] and spec.grid["week"] == "last 2"
    assert spec.schedule.timezone == "Europe/Berlin" and spec.schedule.misfire_grace == 3600
    fire = spec.schedule.trigger().get_next_fire_time(None, dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc))
    assert fire.isoformat() == "2026-11-23T06:30:00+01:00"
    assert (spec.retries.max, spec.retries.backoff) == (2, 30.0) and spec.owner == "ann@example.com"
    assert [c.describe() for c in spec.checks] == [
        "table t: at least 3 rows and no missing values in a", "metric m: between 0 and 5"]
    # the audience of one variant: the common groups plus the groups mapped from its values
    assert spec.audience.for_values({"region": "north", "week": "2026-11-09"}) == {"groups": ["managers", "north-team"], "users": []}
    assert spec.audience.for_values({"region": "south", "week": D(2026, 11, 16)})["groups"] == ["managers", "south-team", "auditors"]
    assert spec.audience.for_values({"region": "west"})["groups"] == ["managers"]
    prepare(spec, {})  # grid and mapping keys are parameters of the notebook
    dumped = spec.model_dump(mode="json", exclude={"path"})
    assert dumped["grid"]["week"] == "last 2" and dumped["audience"]["by"]["week"] == {"2026-11-16": ["auditors"]}


@pytest.mark.parametrize(
    "text, key, message",
    [
        ("grid:\n  region: []", "grid", "at least one value"),
        ("grid:\n  week: last fortnight", "grid", "expected 'last N'"),
        ("grid:\n  region: [a, a]", "grid", "listed twice"),
        ("schedule:\n  cron: '61 * * * *'", "schedule", "cron"),
        ("schedule:\n  cron: '0 6 * * MON *'", "schedule", "expected 5 fields"),
        ("schedule:\n  cron: '0 6 * * MON'\n  timezone: Mars/Olympus", "schedule.timezone", "unknown time zone"),
        ("schedule:\n  timezone: UTC", "schedule.cron", "Field required"),
        ("owner: nobody", "owner", "not an e-mail address"),
        ("retries: -1", "retries.max", "greater than or equal to 0"),
        ("retries: {max: 1, backof: 3}", "retries.backof", "Extra inputs"),
        ("checks:\n  - {table: t, metric: m, min_rows: 1}", "checks.0", "exactly one of"),
        ("checks:\n  - {table: t}", "checks.0", "say what to check"),
        ("checks:\n  - {table: t, max: 3}", "checks.0", "apply to a metric"),
        ("checks:\n  - {metric: m, min: 5, max: 1}", "checks.0", "above max"),
        ("checks:\n  - {metric: m, min_rows: 1}", "checks.0", "apply to a table"),
        ("audience:\n  by: {region: [a]}", "audience.by", "expected a mapping"),
        ("preload: ['os; rm -rf']", "preload", "not a module name"),
    ],
)
def test_spec_errors_name_file_and_key(notebooks, text, key, message):
    (notebooks / "weekly.yml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(notebooks / "weekly.yml")
    assert info.value.key == key and message in str(info.value), str(info.value)


@pytest.mark.parametrize("text, key", [("grid:\n  colour: [red]", "grid.colour"),
                                       ("audience:\n  by: {colour: {red: [x]}}", "audience.by.colour")])
def test_grid_and_mapping_keys_must_be_parameters(notebooks, text, key):
    (notebooks / "weekly.yml").write_text(text)
    with pytest.raises(SpecError, match=f"{key}: is not a parameter of the notebook"):
        prepare(load_spec(notebooks / "weekly.yml"), {})


def test_audience_mapping_grants_each_variant_only_to_its_groups(portal, tmp_path):  # noqa: F811
    from publish_server.extensions import db
    from publish_server.models import Grant, Group, Publication

    with portal.app.app_context():
        db.session.add_all([Group(name=n) for n in ("managers", "north-team", "south-team")])
        db.session.commit()
    audience = Audience(groups=["managers"], by={"region": {"north": ["north-team"], "south": ["south-team"]}})
    spec = {"audience": audience.model_dump(mode="json")}
    published = {
        region: publish_run(make_run_dir(tmp_path, parameters={"region": region, "week": "2026-11-16"}, spec=spec),
                            portal.url, portal.token, **FAST)
        for region in ("north", "south")
    }
    with portal.app.app_context():
        granted = {
            region: sorted(db.session.scalars(
                sa.select(Group.name).join(Grant, Grant.group_id == Group.id)
                .join(Publication, Grant.publication_id == Publication.id).where(Publication.public_id == pub.id)))
            for region, pub in published.items()
        }
    assert granted == {"north": ["managers", "north-team"], "south": ["managers", "south-team"]}
