"""Variants on the portal: a publication is (report, variant, period, version).

Publishing goes through the real API view; grants through the admin CLI; reading through the
pages and the JSON API (SQLite and PostgreSQL, like every portal test).
"""

from __future__ import annotations

import re

import pytest

from publish_server.extensions import db
from publish_server.models import Grant

from .conftest import make_pdf
from .test_publishing import metadata_for, new_publisher_token, post_publication

WEEK_DATES = {"2026-W47": "2026-11-16", "2026-W48": "2026-11-23"}


@pytest.fixture
def token(app) -> str:
    return new_publisher_token()


def _publish(client, token, region: str | None, period: str, run_id: str, parameters: dict | None = None) -> dict:
    pdf = make_pdf(marker=run_id)
    variant = {"variant": {"region": region}} if region else {}
    if parameters is None:
        parameters = {"week": WEEK_DATES[period], "region": region}
    meta = metadata_for(pdf, report="weekly_statistics", run_id=run_id, period_label=period, parameters=parameters, **variant)
    response = post_publication(client, token, pdf, meta)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _grid(client, token) -> dict:
    """north/south x two weeks, then north 2026-W47 again."""
    made = {(r, p): _publish(client, token, r, p, f"{r}-{p}") for p in WEEK_DATES for r in ("north", "south")}
    made["rerun"] = _publish(client, token, "north", "2026-W47", "north-again")
    return made


def _ids(html: str) -> list[str]:
    return re.findall(r'/p/([A-Za-z0-9_-]+)/download', html)


def test_versions_count_per_variant_and_period_and_pages_list_report_variant_periods(app, client, token, make_user, login):
    made = _grid(client, token)
    assert [made[k]["version"] for k in made] == [1, 1, 1, 1, 2]
    rerun = made["rerun"]
    assert (rerun["variant"], rerun["variant_label"]) == ({"region": "north"}, "north")
    assert rerun["page_url"].endswith("/reports/weekly_statistics?variant=north")

    make_user("boss@example.org", role="admin")
    login(client, "boss@example.org")
    page = client.get("/reports/weekly_statistics?variant=north").get_data(as_text=True)
    # north only; newest period first (a re-run does not move W47 above W48); a period's latest
    # version first, the earlier one under it, muted
    assert _ids(page) == [made[("north", "2026-W48")]["id"], rerun["id"], made[("north", "2026-W47")]["id"]]
    assert page.count('class="earlier"') == 1 and "Weekly Statistics: north" in page
    index = client.get("/").get_data(as_text=True)
    assert index.index('class="variant">north<') < index.index('class="variant">south<')  # north published last
    assert len(_ids(index)) == 5
    download = client.get(f"/p/{rerun['id']}/download")
    assert download.status_code == 200
    assert "filename=weekly_statistics-north-v2-2026-W47.pdf" in download.headers["Content-Disposition"]


def test_a_variant_grant_covers_that_variant_only(app, client, token, make_user, login, api_token, cli_runner):
    made = _grid(client, token)
    make_user("sud@example.org", groups=("south",))
    granted = cli_runner("grant", "--report", "weekly_statistics", "--variant", "south", "--group", "south")
    assert granted.exit_code == 0 and granted.output.strip() == "granted report weekly_statistics variant south to group south"
    assert "a variant grant (--report with --variant)" in " ".join(cli_runner("grant", "--help").output.split())
    listed = cli_runner("grants").output
    assert re.search(r"weekly_statistics\s+south\s+variant\s+group south", listed), listed

    login(client, "sud@example.org")
    south_ids = {made[("south", p)]["id"] for p in WEEK_DATES}
    assert set(_ids(client.get("/").get_data(as_text=True))) == south_ids
    north = made[("north", "2026-W47")]["id"]
    assert client.get(f"/p/{north}/download").status_code == 404  # not granted: as if it did not exist
    assert client.get("/reports/weekly_statistics?variant=north").status_code == 404
    headers = {"Authorization": f"Bearer {api_token(client, 'sud@example.org')}"}
    assert client.get(f"/api/v1/publications/{north}", headers=headers).status_code == 404
    listed_api = client.get("/api/v1/publications?variant=south", headers=headers).get_json()["publications"]
    assert {p["id"] for p in listed_api} == south_ids
    assert client.get("/api/v1/publications?variant=north", headers=headers).get_json()["publications"] == []

    twin = db.session.scalars(db.select(Grant).where(Grant.variant == "south")).one()
    db.session.add(Grant(report_id=twin.report_id, variant="south", group_id=twin.group_id))  # as two racing publishers may leave it
    revoked = cli_runner("revoke-grant", "--report", "weekly_statistics", "--variant", "south", "--group", "south")
    assert revoked.exit_code == 0
    assert client.get("/api/v1/publications", headers=headers).get_json()["publications"] == []
    assert cli_runner("grant", "--publication", north, "--variant", "x", "--group", "south").exit_code == 2


def test_search_matches_variant_parameters_and_a_date_or_its_iso_week(app, client, token, make_user, api_token, login):
    made = _grid(client, token)
    # a period label that is no week; its date parameter lies in 2026-W47
    release = _publish(client, token, None, "November release", "release", parameters={"week": "2026-11-19", "city": "Hamburg"})
    make_user("boss@example.org", role="admin")
    headers = {"Authorization": f"Bearer {api_token(client, 'boss@example.org')}"}

    def found(q: str, **more) -> set[str]:
        answer = client.get("/api/v1/publications", query_string={"q": q, **more}, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return {p["id"] for p in answer.get_json()["publications"]}

    w47 = {made[("north", "2026-W47")]["id"], made[("south", "2026-W47")]["id"], made["rerun"]["id"]}
    assert found("2026-11-18") == w47 | {release["id"]}  # a date finds its ISO week's period and parameters
    assert found("2026-W47") == w47 | {release["id"]}  # a week finds the publication whose date lies in it
    assert found("hamburg") == {release["id"]}
    assert found("south", variant="south") == {made[("south", p)]["id"] for p in WEEK_DATES}
    assert found("2026-11-31") == set()  # not a date: matched as text only
    login(client, "boss@example.org")
    assert set(_ids(client.get("/?q=2026-11-18").get_data(as_text=True))) == w47 | {release["id"]}  # the page searches alike
    assert set(_ids(client.get("/?q=Hamburg").get_data(as_text=True))) == {release["id"]}
    schema = client.get("/api/openapi.json").get_json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/publications"]["get"]["parameters"]}
    assert "ISO week" in params["q"]["schema"]["description"] and "variant" in params
    assert {"variant", "variant_label"} <= set(schema["components"]["schemas"]["PublicationOut"]["properties"])


@pytest.mark.parametrize(("extra", "message"), [
    ({"variant": {"region": "nor\x00th"}}, "metadata.variant: Value error, must not contain control characters"),
    ({"variant": {"region": "n" * 101}}, "a variant value has 1 to 100 characters"),
    ({"variant": {f"k{i}": "v" for i in range(11)}}, "at most 10 variant names"),
    ({"variant": {"region": 3}}, "metadata.variant.region: Input should be a valid string"),
    ({"variant_audience": {"groups": ["north"]}}, "variant_audience needs a variant"),
    ({"variant": {"region": "north"}, "variant_audience": {"groups": ["nobody"]}}, "Unknown audience: group 'nobody'"),
])
def test_bad_variant_metadata_is_a_400_naming_the_field(app, client, token, extra, message):
    pdf = make_pdf()
    response = post_publication(client, token, pdf, metadata_for(pdf, **extra))
    assert response.status_code == 400 and message in response.get_json()["message"], response.get_json()
    assert db.session.scalar(db.select(db.func.count(Grant.id))) == 0


@pytest.fixture
def cli_runner(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        db.session.commit()
        result = runner.invoke(args=list(args))
        db.session.expire_all()
        return result

    return invoke
