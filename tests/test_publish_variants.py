"""Variants, toolkit side: ``variant_by`` in the spec, the variant a run carries, and what a grid
of north/south x two weeks becomes on a REAL portal on loopback (real HTTP): one v1 per variant
and period; a re-run of north 2026-W47 is v2 of that one only; ``audience.by`` becomes grants of
a variant, so a south reader never sees north.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, Grant, Group, User
from tests.conftest import make_notebook
from tests.test_publish_client import FAST, _nbpress, make_run_dir, portal, portal_app  # noqa: F401 (fixtures)
from toolkit.deliver.portal_client import publish_run
from toolkit.errors import SpecError
from toolkit.inputs.prepare import read_inputs
from toolkit.inputs.spec import load_spec
from toolkit.runs.run_folder import load_run

ROOT = Path(__file__).resolve().parents[1]
BY_REGION = {"audience": {"groups": ["managers"], "by": {"region": {"north": ["north"], "south": ["south"]}}},
             "variant_by": ["region"]}
WEEKS = {"2026-W47": "2026-11-16", "2026-W48": "2026-11-23"}


def _spec(tmp_path: Path, text: str) -> Path:
    shutil.copy(ROOT / "notebooks" / "weekly_statistics.ipynb", tmp_path / "weekly.ipynb")
    path = tmp_path / "weekly.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_variant_by_names_parameters_and_a_run_carries_its_values(tmp_path):
    inputs = read_inputs(load_spec(_spec(tmp_path, "variant_by: [status]\nperiod: '{week:%G-W%V}'\n")))
    prepared = inputs.prepare(inputs.given({"status": "error", "week": "2026-11-18"}))
    assert prepared.variant == {"status": "error"} and prepared.period == "2026-W47"
    dated = read_inputs(load_spec(_spec(tmp_path, "variant_by: week\n")))  # a date is shown as readers see it
    assert dated.prepare(dated.given({"week": "2026-11-18"})).variant == {"week": "2026-11-18"}


@pytest.mark.parametrize(("text", "message"), [
    ("variant_by: [region]\n", "weekly.yml: variant_by: 'region' is not a parameter of the notebook"),
    ("variant_by: [status, status]\n", "variant_by: Value error, names a parameter twice"),
    ("variant_by: [week]\naudience: {by: {status: {ok: [a]}}}\n", "audience.by.status: not in variant_by"),
])
def test_a_bad_variant_by_is_one_clear_error_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(SpecError) as caught:
        read_inputs(load_spec(_spec(tmp_path, text)))
    assert message in str(caught.value) and "weekly.yml" in str(caught.value)


def _people(app) -> None:
    with app.app_context():
        for name in ("north", "south", "managers"):
            db.session.add(Group(name=name, members=[User(email=f"{name}@example.org", password_hash="x")]))
        db.session.commit()


def _run(tmp_path: Path, region: str, period: str) -> Path:
    return make_run_dir(tmp_path, parameters={"region": region, "week": WEEKS[period]}, period=period,
                        variant={"region": region}, spec=BY_REGION)


def test_a_grid_of_regions_and_weeks_gives_v1_per_variant_and_period_and_a_rerun_v2_of_one(portal, tmp_path):
    _people(portal.app)
    grid = {(region, period): publish_run(_run(tmp_path, region, period), portal.url, portal.token, **FAST)
            for region in ("north", "south") for period in WEEKS}
    assert {key: p.version for key, p in grid.items()} == dict.fromkeys(grid, 1)
    again = publish_run(_run(tmp_path, "north", "2026-W47"), portal.url, portal.token, **FAST)
    assert (again.version, again.variant_label, again.name) == (2, "north", "weekly_statistics north 2026-W47 v2")
    versions = sorted((p.variant_label, p.period_label, p.version) for p in portal.publications())
    assert versions == [("north", "2026-W47", 1), ("north", "2026-W47", 2), ("north", "2026-W48", 1),
                        ("south", "2026-W47", 1), ("south", "2026-W48", 1)]
    # the link for recipients opens the report page on the run's variant
    assert again.page_url == f"{portal.url}/reports/weekly_statistics?variant=north"
    # audience.by became one grant per variant (created once, audited); managers got each publication
    assert (again.readers, again.reader_groups) == (2, ("managers", "north"))
    with portal.app.app_context():
        variant_grants = db.session.execute(sa.select(Grant.variant, Group.name).join(Group, Grant.group_id == Group.id)
                                            .where(Grant.variant.is_not(None))).all()
        audited = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.event == "grant_added"))
    assert sorted(tuple(r) for r in variant_grants) == [("north", "north"), ("south", "south")] and audited == 2
    # run.json keeps the variant the run was made for
    assert load_run(_run(tmp_path, "south", "2026-W48")).variant == {"region": "south"}


def test_without_variant_by_the_audience_by_goes_to_the_publication_as_before(portal, tmp_path):
    _people(portal.app)
    spec = {"audience": {"by": {"region": {"north": ["north"]}}}}
    published = publish_run(make_run_dir(tmp_path, parameters={"region": "north"}, spec=spec), portal.url, portal.token, **FAST)
    assert (published.variant_label, published.reader_groups) == ("", ("north",))
    with portal.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Grant.id)).where(Grant.variant.is_not(None))) == 0


def test_cli_publish_names_the_variant(portal, tmp_path):
    _people(portal.app)
    run_dir = _run(tmp_path / "runs", "south", "2026-W48")
    done = _nbpress("publish", str(run_dir), "--portal", portal.url, env={"NBPRESS_PUBLISH_TOKEN": portal.token}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    publication = load_run(run_dir).publication
    assert done.stdout.splitlines()[0] == (f"published weekly_statistics south 2026-W48 v1 (id {publication.id}): "
                                           f"{portal.url}/reports/weekly_statistics?variant=south")
    listed = _nbpress("runs", env={}, cwd=tmp_path)
    assert f"south v1 {portal.url}/reports/weekly_statistics?variant=south (id {publication.id})" in listed.stdout


def test_a_real_grid_run_publishes_each_variant_and_its_lines_name_it(portal, project):
    """`nbpress run --grid ... --publish` for real (kernels, PDFs): two regions x two weeks."""
    _people(portal.app)
    make_notebook(project.notebooks_dir / "regional.ipynb", "import datetime\nregion: str = 'north'\nweek: datetime.date = datetime.date(2026, 11, 16)",
                  "import toolkit as tk\ntk.metric('n', 1, label='N')")
    (project.notebooks_dir / "regional.yml").write_text(
        "period: '{week:%G-W%V}'\nvariant_by: [region]\ngrid: {region: [north, south], week: [2026-11-16, 2026-11-23]}\n"
        "audience: {by: {region: {north: [north], south: [south]}}}\n", encoding="utf-8")
    done = _nbpress("run", "regional", "--publish", "--portal", portal.url, "-w", "2",
                    env={"NBPRESS_PUBLISH_TOKEN": portal.token}, cwd=project.root)
    assert done.returncode == 0, done.stderr
    for region in ("north", "south"):
        assert len(re.findall(rf"\(published {region} v1 {re.escape(portal.url)}/reports/regional\?variant={region}\)", done.stdout)) == 2
    assert sorted((p.variant_label, p.period_label, p.version) for p in portal.publications()) == [
        ("north", "2026-W47", 1), ("north", "2026-W48", 1), ("south", "2026-W47", 1), ("south", "2026-W48", 1)]
    assert sorted(load_run(d).variant["region"] for d in (project.runs_dir / "regional").iterdir()) == ["north", "north", "south", "south"]
