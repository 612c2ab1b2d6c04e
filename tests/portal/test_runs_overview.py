"""The runs overview (/activity): each report its viewer may watch, with schedule, next and last
run; owners see theirs, operators and admins every report, recipients none (and no link to it)."""

from __future__ import annotations

from tests.portal.run_helpers import add_run_log, make_report


def _reports(app, client) -> str:
    answer = client.get("/activity")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_owners_see_their_reports_operators_every_report_recipients_none(app, client, make_user, login):
    weekly = make_report("weekly_statistics", owners=["owner@example.org"])
    make_report("monthly_figures", owners=["someone.else@example.org"])
    add_run_log(weekly, "20261130T050000Z-1a2b3c4d", error_line="cell 4: ZeroDivisionError: division by zero")
    make_user("owner@example.org")
    make_user("operator@example.org", role="operator")
    make_user("reader@example.org")

    client = app.test_client()
    login(client, "owner@example.org")
    html = _reports(app, client)
    assert "Weekly Statistics" in html and "Monthly Figures" not in html
    assert "every Monday at 06:00 (Europe/Berlin)" in html and "ZeroDivisionError" in html
    assert 'href="/reports/weekly_statistics/activity"' in html
    account = client.get("/account").get_data(as_text=True)
    assert 'id="runs-overview"' in account and 'href="/activity">Runs</a>' not in account  # no nav link for owners

    client = app.test_client()
    login(client, "operator@example.org")
    html = _reports(app, client)
    assert "Weekly Statistics" in html and "Monthly Figures" in html
    assert 'href="/activity">Runs</a>' in client.get("/account").get_data(as_text=True)

    client = app.test_client()
    login(client, "reader@example.org")
    html = _reports(app, client)
    assert "Weekly Statistics" not in html and "Monthly Figures" not in html and "ZeroDivisionError" not in html
    account = client.get("/account").get_data(as_text=True)
    assert 'id="runs-overview"' not in account and 'href="/activity">Runs</a>' not in account
