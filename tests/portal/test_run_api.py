"""The run requests' JSON API: ask, read, cancel; who gets 404; the limits under 50 asks at once."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, RunRequest
from tests.portal.run_helpers import grant_read, grant_run, make_report

GOOD = {"parameters": {"week": "2026-11-23", "regions": ["south"], "title": "Week 48", "unit": 1}}


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def runner(app, client, make_user, api_token):
    user = make_user("runner@example.org")
    report = make_report("weekly_statistics", owners=["owner@example.org"])
    grant_run(report, user=user)
    return _bearer(api_token(client, "runner@example.org"))


def test_ask_read_and_cancel(app, client, runner, make_user, api_token):
    asked = client.post("/api/v1/reports/weekly_statistics/run-requests", json=GOOD, headers=runner)
    assert asked.status_code == 202, asked.get_json()
    body = asked.get_json()
    assert body["status"] == "queued" and body["report"] == "weekly_statistics" and body["publication"] is None
    assert body["parameters"] == {"week": "2026-11-23", "regions": ["south"], "top": 10, "threshold": None, "detailed": False,
                                  "since": "2026-11-16T06:00:00", "unit": 1, "title": "Week 48"}
    assert client.get(f"/api/v1/run-requests/{body['id']}", headers=runner).get_json()["status"] == "queued"
    make_user("owner@example.org")
    make_user("stranger@example.org")
    owner = _bearer(api_token(client, "owner@example.org"))
    stranger = _bearer(api_token(client, "stranger@example.org"))
    assert client.get(f"/api/v1/run-requests/{body['id']}", headers=owner).status_code == 200
    assert client.get(f"/api/v1/run-requests/{body['id']}", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/run-requests/{body['id']}/cancel", headers=stranger).status_code == 404
    cancelled = client.post(f"/api/v1/run-requests/{body['id']}/cancel", headers=runner)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = client.post(f"/api/v1/run-requests/{body['id']}/cancel", headers=runner)
    assert again.status_code == 409 and again.get_json()["error"] == "already_ended"
    events = db.session.execute(sa.select(AuditEvent.event, AuditEvent.outcome).where(AuditEvent.event.like("run_%"))
                                .order_by(AuditEvent.id)).all()
    assert events == [("run_requested", "ok"), ("run_cancel_asked", "cancelled"), ("run_cancel_asked", "refused")]


REFUSED = [
    ({"week": "2026-02-30", "title": "x"}, "parameter 'week': got '2026-02-30', expected date"),
    ({"week": "2026-11-23"}, "parameter 'title': missing required value (str)"),
    ({"title": "x", "top": 1.5}, "parameter 'top': got 1.5, expected int"),
    ({"title": "x", "threshold": "nan"}, "parameter 'threshold': got 'nan', expected float or None"),
    ({"title": "x", "unit": "10"}, "parameter 'unit': got '10', expected one of 1, 10, 100"),
    ({"title": "x", "regions": ["east"]}, "parameter 'regions': got 'east', expected one of 'north', 'south'"),
    ({"title": "x", "token": "s3cret"}, "parameter 'token': unknown parameter (known: week, regions, top, threshold, detailed, since, unit, title)"),
]


def test_refused_values_answer_400_with_the_toolkits_message(app, client, runner):
    for parameters, message in REFUSED:
        answer = client.post("/api/v1/reports/weekly_statistics/run-requests", json={"parameters": parameters}, headers=runner)
        assert answer.status_code == 400, parameters
        assert answer.get_json() == {"error": "bad_parameter", "message": message}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RunRequest)) == 0


def test_no_run_grant_or_another_report_is_404(app, client, make_user, api_token):
    reader = make_user("reader@example.org")
    a, b = make_report("report_a"), make_report("report_b")
    grant_read(a, reader)
    grant_run(b, user=reader)
    headers = _bearer(api_token(client, "reader@example.org"))
    for slug in ("report_a", "no_such_report", "..%2f", "x" * 70):
        answer = client.post(f"/api/v1/reports/{slug}/run-requests", json=GOOD, headers=headers)
        assert answer.status_code == 404, slug
    assert client.post("/api/v1/reports/report_b/run-requests", json=GOOD, headers=headers).status_code == 202
    assert client.post("/api/v1/reports/report_b/run-requests", json=GOOD).status_code == 401


def test_the_openapi_document_lists_the_run_operations(app, client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert set(paths["/api/v1/reports/{slug}/run-requests"]) == {"post"}
    assert "429" in paths["/api/v1/reports/{slug}/run-requests"]["post"]["responses"]
    assert set(paths["/api/v1/run-requests/{public_id}"]) == {"get"}
    assert set(paths["/api/v1/run-requests/{public_id}/cancel"]) == {"post"}


AT_ONCE = 50


def _at_once(app, asks):
    """Run the ``asks`` (each takes a test client) in threads released together; their status codes."""
    start = threading.Barrier(len(asks))

    def one(ask):
        test_client = app.test_client()
        start.wait()
        return ask(test_client)

    with ThreadPoolExecutor(len(asks)) as pool:
        return [f.result() for f in [pool.submit(one, ask) for ask in asks]]


def _stored(**where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(RunRequest).filter_by(**where))


@pytest.mark.parametrize("limit_name, expected", [("RUN_MAX_ACTIVE_PER_USER", 2), ("RUN_REQUESTS_PER_HOUR", 20)])
def test_fifty_asks_at_once_by_one_user_store_exactly_the_limit(app, client, runner, limit_name, expected):
    settings = app.config["NBPRESS"]
    assert settings[limit_name] == expected  # the shipped default
    if limit_name == "RUN_REQUESTS_PER_HOUR":  # the other limits out of the way
        settings["RUN_MAX_ACTIVE_PER_USER"] = settings["RUN_MAX_ACTIVE_PER_REPORT"] = 1000
    statuses = _at_once(app, [lambda c: c.post("/api/v1/reports/weekly_statistics/run-requests", json=GOOD, headers=runner)
                              for _ in range(AT_ONCE)])
    answers = [s.status_code for s in statuses]
    assert answers.count(202) == expected and answers.count(429) == AT_ONCE - expected, answers
    assert _stored() == expected
    refused = next(s for s in statuses if s.status_code == 429).get_json()
    assert refused["error"] == "run_limit" and (
        "You already have 2 runs queued or running" in refused["message"] if expected == 2 else "20 runs in the last hour" in refused["message"])


def test_fifty_asks_at_once_by_ten_users_store_five_for_one_report(app, client, make_user, api_token):
    report = make_report("weekly_statistics")
    tokens = []
    for n in range(10):
        user = make_user(f"runner{n}@example.org")
        grant_run(report, user=user)
        tokens.append(_bearer(api_token(client, f"runner{n}@example.org")))
    statuses = _at_once(app, [lambda c, n=n: c.post("/api/v1/reports/weekly_statistics/run-requests", json=GOOD, headers=tokens[n % 10])
                              for n in range(AT_ONCE)])
    answers = [s.status_code for s in statuses]
    assert answers.count(202) == 5 and _stored() == 5, answers
    messages = {s.get_json()["message"] for s in statuses if s.status_code == 429}
    assert any("This report already has 5 runs queued or running" in m for m in messages)


def test_reading_a_request_shows_a_lapse_as_what_it_now_is(app, client, runner):
    """Nothing runs the sweep between polls: the status read does, so no request reads "running"
    after its worker died, nor "queued" past its window."""
    queued = client.post("/api/v1/reports/weekly_statistics/run-requests", json=GOOD, headers=runner).get_json()["id"]
    running = client.post("/api/v1/reports/weekly_statistics/run-requests", json=GOOD, headers=runner).get_json()["id"]
    past = db.session.scalar(sa.select(sa.func.min(RunRequest.created_at))) - dt.timedelta(hours=1)
    db.session.execute(sa.update(RunRequest).where(RunRequest.public_id == queued).values(expires_at=past))
    db.session.execute(sa.update(RunRequest).where(RunRequest.public_id == running).values(
        status="running", attempts=2, lease_owner="w:1", lease_until=past))
    db.session.commit()
    expired = client.get(f"/api/v1/run-requests/{queued}", headers=runner).get_json()
    assert expired["status"] == "expired" and "no worker took this request" in expired["error_line"]
    lost = client.get(f"/api/v1/run-requests/{running}", headers=runner).get_json()
    assert lost["status"] == "failed" and "stopped answering" in lost["error_line"]
