"""The run pages: the form from a report's schema, the status page, cancel, activity, notebooks,
and who may see which (a recipient without a run grant sees no button and gets 404)."""

from __future__ import annotations

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, RunRequest
from tests.portal.run_helpers import GOOD_FORM, add_run_log, csrf_for, csrf_of, grant_read, grant_run, make_report


def _form(client, slug: str):
    page = client.get(f"/reports/{slug}/run")
    assert page.status_code == 200, page.status_code
    return page.get_data(as_text=True)


def test_the_form_draws_every_kind_with_defaults_and_marks_the_required_field(app, client, make_user, login):
    user = make_user("runner@example.org")
    report = make_report("weekly_statistics")
    grant_run(report, user=user)
    login(client, "runner@example.org")
    html = _form(client, "weekly_statistics")
    assert '<input id="param-week" name="week" type="date" value="2026-11-16"' in html
    assert '<select id="param-regions" name="regions" multiple' in html and '<option value="north" selected>' in html
    assert 'type="number" value="10" step="1"' in html and 'name="threshold" type="number" value="" step="any"' in html
    assert 'type="checkbox" id="param-detailed" name="detailed" value="true"' in html
    assert 'name="since" type="datetime-local" value="2026-11-16T06:00:00"' in html
    assert '<select id="param-unit" name="unit"' in html and '<option value="10" selected>' in html
    assert 'name="title" type="text" value="" required' in html and "(required)" in html
    assert "ISO week to report" in html


def test_a_bad_value_shows_the_toolkits_message_and_keeps_what_was_typed(app, client, make_user, login):
    user = make_user("runner@example.org")
    grant_run(make_report("weekly_statistics"), user=user)
    login(client, "runner@example.org")
    csrf = csrf_of(_form(client, "weekly_statistics"))
    answer = client.post("/reports/weekly_statistics/run", data={**GOOD_FORM, "week": "2026-02-30", "top": "1.5", "title": "",
                                                                  "csrf_token": csrf})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "parameter &#39;week&#39;: got &#39;2026-02-30&#39;, expected date" in html
    assert "parameter &#39;top&#39;: got &#39;1.5&#39;, expected int" in html
    assert "parameter &#39;title&#39;: missing required value (str)" not in html  # a str may be empty
    assert 'value="2026-02-30"' in html and 'value="1.5"' in html and '<option value="south" selected>' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RunRequest)) == 0


def test_a_good_form_queues_a_request_and_shows_its_status(app, client, make_user, login):
    user = make_user("runner@example.org")
    report = make_report("weekly_statistics")
    grant_run(report, user=user)
    login(client, "runner@example.org")
    csrf = csrf_of(_form(client, "weekly_statistics"))
    answer = client.post("/reports/weekly_statistics/run", data={**GOOD_FORM, "csrf_token": csrf})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:4000].split("form-problem")[-1][:300]
    stored = db.session.scalars(sa.select(RunRequest)).one()
    assert answer.headers["Location"] == f"/requests/{stored.public_id}"
    assert stored.parameters == {"week": "2026-11-23", "regions": ["north", "south"], "top": 5, "threshold": None, "detailed": True,
                                 "since": "2026-11-23T06:00:00", "unit": 100, "title": "Week 48"}
    assert stored.status == "queued" and stored.user_id == user.id
    minutes = (stored.expires_at - stored.created_at).total_seconds() / 60
    assert minutes == app.config["NBPRESS"]["RUN_QUEUE_MINUTES"] == 30
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'data-status="queued"' in page and "Cancel this run" in page and "run_status.js" in page and ">Refresh</a>" in page
    polled = client.get(f"/requests/{stored.public_id}/status.json").get_json()
    assert polled["status"] == "queued" and polled["publication"] is None and polled["page_url"] is None
    assert db.session.scalar(sa.select(AuditEvent.outcome).where(AuditEvent.event == "run_requested")) == "ok"
    # the worker (another engineer's endpoints) moves it on; the page follows
    stored.status, stored.stage = "running", "render"
    db.session.commit()
    assert "Running (render)" in client.get(f"/requests/{stored.public_id}").get_data(as_text=True)
    stored.status, stored.error_line = "failed", "parameter 'week': got '2026-11-23', expected date"
    db.session.commit()
    page = client.get(f"/requests/{stored.public_id}").get_data(as_text=True)
    assert 'data-status="failed"' in page and "expected date" in page and 'id="run-cancel" hidden' in page


def test_a_succeeded_request_links_to_the_new_publication(app, client, make_user, login):
    user = make_user("runner@example.org")
    report = make_report("weekly_statistics")
    grant_run(report, user=user)
    run = RunRequest(report_id=report.id, user_id=user.id, status="succeeded", expires_at=report.created_at,
                     publication_id=report.publications[0].id)
    db.session.add(run)
    db.session.commit()
    login(client, "runner@example.org")
    polled = client.get(f"/requests/{run.public_id}/status.json").get_json()
    assert polled["page_url"] == "http://localhost/reports/weekly_statistics"
    assert 'href="http://localhost/reports/weekly_statistics"' in client.get(f"/requests/{run.public_id}").get_data(as_text=True)


def test_cancel_ends_a_queued_request_and_asks_a_running_one(app, client, make_user, login):
    user = make_user("runner@example.org")
    report = make_report("weekly_statistics")
    grant_run(report, user=user)
    login(client, "runner@example.org")
    queued = RunRequest(report_id=report.id, user_id=user.id, expires_at=report.created_at.replace(year=2100))
    running = RunRequest(report_id=report.id, user_id=user.id, status="running", expires_at=queued.expires_at)
    db.session.add_all([queued, running])
    db.session.commit()
    csrf = csrf_of(client.get(f"/requests/{queued.public_id}").get_data(as_text=True))
    assert client.post(f"/requests/{queued.public_id}/cancel", data={"csrf_token": csrf}).status_code == 303
    assert client.post(f"/requests/{running.public_id}/cancel", data={}).status_code == 403  # no CSRF value: refused
    assert client.post(f"/requests/{running.public_id}/cancel", data={"csrf_token": csrf}).status_code == 303
    db.session.expire_all()
    assert (queued.status, running.status, running.cancel_requested) == ("cancelled", "running", True)
    assert "cancel asked" in client.get(f"/requests/{running.public_id}").get_data(as_text=True)
    outcomes = db.session.scalars(sa.select(AuditEvent.outcome).where(AuditEvent.event == "run_cancel_asked").order_by(AuditEvent.id)).all()
    assert outcomes == ["cancelled", "cancel_requested"]


def test_only_runners_see_the_run_button_and_reach_the_form(app, client, make_user, login):
    reader = make_user("reader@example.org")
    runner = make_user("runner@example.org", groups=("analysts",))
    a, b = make_report("report_a"), make_report("report_b")
    grant_read(a, reader)
    grant_read(b, reader)
    group_id = runner.groups[0].id
    grant_run(a, group_id=group_id)  # via a group
    grant_read(b, runner)  # reads B, may not run it
    login(client, "reader@example.org")
    assert 'id="run-report"' not in client.get("/reports/report_a").get_data(as_text=True)
    assert client.get("/reports/report_a/run").status_code == 404
    csrf = csrf_of(client.get("/account").get_data(as_text=True))
    assert client.post("/reports/report_a/run", data={**GOOD_FORM, "csrf_token": csrf}).status_code == 404
    other = app.test_client()
    login(other, "runner@example.org")
    assert 'id="run-report"' in other.get("/reports/report_a").get_data(as_text=True)
    assert 'id="run-report"' not in other.get("/reports/report_b").get_data(as_text=True)
    csrf = csrf_of(other.get("/reports/report_a/run").get_data(as_text=True))
    assert other.post("/reports/report_b/run", data={**GOOD_FORM, "csrf_token": csrf}).status_code == 404
    assert other.post("/reports/report_a/run", data={**GOOD_FORM, "csrf_token": csrf}).status_code == 303
    mine = db.session.scalars(sa.select(RunRequest)).one()
    # another user's request does not exist for the reader, on every route
    for path in (f"/requests/{mine.public_id}", f"/requests/{mine.public_id}/status.json"):
        assert client.get(path).status_code == 404
    refused = client.post(f"/requests/{mine.public_id}/cancel", data={"csrf_token": csrf_for(client)})
    assert refused.status_code == 404, refused.get_data(as_text=True)
    assert "My requests" in other.get("/account").get_data(as_text=True)


def test_a_run_grant_without_read_access_does_not_run(app, client, make_user, login):
    user = make_user("runner@example.org")
    report = make_report("weekly_statistics")
    grant_run(report, user=user, read=False)
    login(client, "runner@example.org")
    assert client.get("/reports/weekly_statistics/run").status_code == 404


def test_activity_and_notebooks_for_owners_and_operators_only(app, client, make_user, login):
    owner = make_user("Owner@example.org")
    make_user("operator@example.org", role="operator")
    recipient = make_user("reader@example.org")
    report = make_report("weekly_statistics", owners=["owner@example.org"])
    grant_run(report, user=recipient)
    grant_read(report, owner)
    add_run_log(report, "20261130T050000Z-1a2b3c4d", notebook="<html><body><p>ZeroDivisionError in cell 4</p></body></html>",
                error_line="cell 4: ZeroDivisionError: division by zero")
    add_run_log(report, "20261123T050000Z-0a0b0c0d", status="succeeded")
    notebook_path = "/reports/weekly_statistics/runs/20261130T050000Z-1a2b3c4d/notebook"
    login(client, "reader@example.org")
    assert 'id="report-activity"' not in client.get("/reports/weekly_statistics").get_data(as_text=True)
    assert client.get("/reports/weekly_statistics/activity").status_code == 404
    assert client.get(notebook_path).status_code == 404
    for email in ("owner@example.org", "operator@example.org"):
        viewer = app.test_client()
        login(viewer, email)
        if email.startswith("owner"):
            assert 'id="report-activity"' in viewer.get("/reports/weekly_statistics").get_data(as_text=True)
        html = viewer.get("/reports/weekly_statistics/activity").get_data(as_text=True)
        assert "Runs every Monday at 06:00 (Europe/Berlin)." in html and "2026-12-07 05:00 UTC" in html
        assert "cell 4: ZeroDivisionError: division by zero" in html and "1 min 23 s" in html and notebook_path in html
        assert html.count(">notebook<") == 1  # only the failed run stored one
        shown = viewer.get(notebook_path)
        assert shown.status_code == 200 and b"ZeroDivisionError in cell 4" in shown.data
        assert shown.headers["Content-Security-Policy"] == "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        assert viewer.get("/reports/weekly_statistics/runs/20261123T050000Z-0a0b0c0d/notebook").status_code == 404


def test_a_report_without_a_profile_says_it_cannot_run(app, client, make_user, login):
    user = make_user("runner@example.org")
    grant_run(make_report("weekly_statistics", profile=False), user=user)
    login(client, "runner@example.org")
    assert 'id="run-report"' not in client.get("/reports/weekly_statistics").get_data(as_text=True)
    assert 'id="not-runnable"' in _form(client, "weekly_statistics")


def test_a_schema_the_portal_cannot_read_is_a_clear_409(app, client, make_user, login):
    user = make_user("runner@example.org")
    grant_run(make_report("weekly_statistics", schema=[{"name": "when", "type": {"kind": "timedelta"}}]), user=user)
    login(client, "runner@example.org")
    answer = client.get("/reports/weekly_statistics/run")
    assert answer.status_code == 409 and "its worker must describe it again" in answer.get_data(as_text=True)
