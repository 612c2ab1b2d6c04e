"""The worker-facing API of runs from the portal: the project rule, profiles and run records,
claims with leases, progress, finish with the transient rule, the lapse sweep and expiry.

Every test runs on SQLite and on the test PostgreSQL (tests/portal/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import gzip

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, Publication, Report, ReportProfile, RunLog, utcnow
from publish_server.report_runs import claims as run_claims
from tests.portal.run_helpers import (
    PROFILE, bearer, claim, finish, lapse, progress, project_token, queue, report, stored,
)
from tests.portal.test_publishing import publish_ok


def _events(name: str, outcome: str | None = "ok") -> list[AuditEvent]:
    stmt = sa.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)
    return list(db.session.scalars(stmt if outcome is None else stmt.where(AuditEvent.outcome == outcome)))


# --- the project rule ------------------------------------------------------------------------------


def test_a_project_token_takes_a_new_report_and_another_project_may_not_touch_it(app, client):
    alpha, beta, legacy = project_token("alpha", "alpha"), project_token("beta", "beta"), project_token("legacy", None)
    first = publish_ok(client, alpha, run_id="a1")
    assert db.session.scalars(sa.select(Report.project).where(Report.slug == "weekly_statistics")).one() == "alpha"

    from tests.portal.test_publishing import metadata_for, post_publication
    from tests.portal.conftest import make_pdf

    pdf = make_pdf(marker="b1")
    refused = post_publication(client, beta, pdf, metadata_for(pdf, run_id="b1"))
    assert refused.status_code == 403 and refused.get_json()["error"] == "wrong_project"
    withdraw = client.post(f"/api/v1/publications/{first['id']}/withdraw", json={"reason": "wrong"}, headers=bearer(beta))
    assert withdraw.status_code == 403 and withdraw.get_json()["error"] == "wrong_project"
    described = client.put("/api/v1/reports/weekly_statistics/profile", json=PROFILE, headers=bearer(beta))
    assert described.status_code == 403 and described.get_json()["error"] == "wrong_project"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Publication)) == 1
    assert db.session.get(Publication, 1).withdrawn_at is None

    publish_ok(client, legacy, run_id="l1")  # a token from before projects acts on every report
    monthly = publish_ok(client, legacy, report="monthly", run_id="m1")  # ... and leaves the report without a project
    assert db.session.scalars(sa.select(Report.project).where(Report.slug == "monthly")).one() is None
    # Only publishing or describing takes a report without a project: withdrawing or reporting runs does not.
    assert client.post(f"/api/v1/publications/{monthly['id']}/withdraw", json={"reason": "mine now?"},
                       headers=bearer(beta)).status_code == 403
    run = {"run_id": "m1", "status": "succeeded", "trigger": "manual", "started_at": "2026-12-02T06:00:00Z"}
    assert client.post("/api/v1/reports/monthly/runs", json=run, headers=bearer(beta)).status_code == 403
    assert db.session.scalars(sa.select(Report.project).where(Report.slug == "monthly")).one() is None
    assert client.put("/api/v1/reports/monthly/profile", json=PROFILE, headers=bearer(beta)).status_code == 200
    assert db.session.scalars(sa.select(Report.project).where(Report.slug == "monthly")).one() == "beta"  # described first: beta's
    assert client.put("/api/v1/reports/monthly/profile", json=PROFILE, headers=bearer(alpha)).status_code == 403
    reasons = [e.detail.get("reason") for e in _events("publish", "refused") + _events("publication_withdrawn", "refused")
               + _events("run_profile", "refused")]
    assert reasons.count("wrong_project") == 5


def test_a_user_jwt_opens_no_worker_endpoint(app, client, make_user, api_token):
    make_user("alice@example.com")
    token = api_token(client, "alice@example.com")
    request = queue("weekly", make_user("bob@example.com"))
    for method, path, body in [
        ("PUT", "/api/v1/reports/weekly/profile", PROFILE),
        ("POST", "/api/v1/reports/weekly/runs", {"run_id": "r1", "status": "running", "trigger": "manual", "started_at": "2026-12-02T06:00:00Z"}),
        ("POST", "/api/v1/run-requests/claim", {"worker": "w:1"}),
        ("POST", f"/api/v1/run-requests/{request.public_id}/progress", {"worker": "w:1", "stage": "execute"}),
        ("POST", f"/api/v1/run-requests/{request.public_id}/finish", {"worker": "w:1", "status": "succeeded"}),
    ]:
        response = client.open(path, method=method, json=body, headers=bearer(token))
        assert response.status_code == 401, (path, response.status_code)
    assert stored(request.public_id).status == "queued"


# --- profiles, run records, notebooks ----------------------------------------------------------------


def test_a_profile_is_stored_as_sent_and_replaced_when_sent_again(app, client):
    token = project_token("alpha", "alpha")
    answer = client.put("/api/v1/reports/weekly/profile", json=PROFILE, headers=bearer(token))
    assert answer.status_code == 200 and answer.get_json()["report"] == "weekly"
    weekly = db.session.scalars(sa.select(Report).where(Report.slug == "weekly")).one()
    assert (weekly.title, weekly.project) == ("Weekly Statistics", "alpha")
    profile = db.session.get(ReportProfile, weekly.id)
    assert [p["name"] for p in profile.parameters] == ["week", "regions", "owner"]
    assert "default" not in profile.parameters[2] and profile.parameters[1]["type"]["item"]["choices"] == ["north", "south"]
    assert profile.next_runs == ["2026-12-07T05:00:00Z", "2026-12-14T05:00:00Z"]
    assert profile.owners == ["analyst@example.com"] and profile.schedule["cron"] == "0 6 * * MON"
    again = client.put("/api/v1/reports/weekly/profile", json={**PROFILE, "schedule": {}, "runnable": False}, headers=bearer(token))
    assert again.status_code == 200
    db.session.expire_all()
    assert db.session.get(ReportProfile, weekly.id).schedule == {} and not db.session.get(ReportProfile, weekly.id).runnable
    assert len(_events("run_profile")) == 2


def test_profile_bodies_are_strict(app, client):
    token = project_token("alpha", "alpha")
    one = PROFILE["parameters"][0]
    cases = {
        "unknown key": {**PROFILE, "colour": "red"},
        "a name that is not an identifier": {**PROFILE, "parameters": [{**one, "name": "week; drop"}]},
        "201 parameters": {**PROFILE, "parameters": [{**one, "name": f"p{i}"} for i in range(201)]},
        "101 choices": {**PROFILE, "parameters": [{**one, "type": {"kind": "literal", "choices": list(range(101))}}]},
        "literal without choices": {**PROFILE, "parameters": [{**one, "type": {"kind": "literal"}}]},
        "unknown kind": {**PROFILE, "parameters": [{**one, "type": {"kind": "dict"}}]},
        "a string for a bool": {**PROFILE, "runnable": "yes"},
        "11 next runs": {**PROFILE, "next_runs": ["2026-12-07T05:00:00Z"] * 11},
        "a next run that is no time": {**PROFILE, "next_runs": ["next monday"]},
        "an owner that is no address": {**PROFILE, "owners": ["bob"]},
        "CR/LF in a label": {**PROFILE, "parameters": [{**one, "label": "a\r\nb"}]},
        "twice the same name": {**PROFILE, "parameters": [one, one]},
    }
    for case, body in cases.items():
        response = client.put("/api/v1/reports/weekly/profile", json=body, headers=bearer(token))
        assert response.status_code == 400, case
        assert response.get_json()["error"] == "bad_request", case
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportProfile)) == 0
    wide = {**PROFILE, "parameters": [{**one, "name": f"p{i}", "type": {"kind": "literal", "choices": [f"choice-{j}" for j in range(100)]}}
                                      for i in range(200)]}
    assert client.put("/api/v1/reports/weekly/profile", json=wide, headers=bearer(token)).status_code == 200  # the largest allowed


def test_run_records_are_upserted_and_a_failed_runs_notebook_is_stored_capped(app, client):
    token = project_token("alpha", "alpha")
    client.put("/api/v1/reports/weekly/profile", json=PROFILE, headers=bearer(token))
    run = {"run_id": "20261202-0600-ab12", "status": "running", "trigger": "schedule", "started_at": "2026-12-02T06:00:00Z",
           "parameters": {"week": "2026-11-30", "dsn": "postgresql://u:secret@db/x"}}
    assert client.post("/api/v1/reports/weekly/runs", json=run, headers=bearer(token)).status_code == 200
    ended = {**run, "status": "failed", "finished_at": "2026-12-02T06:01:30Z", "duration_seconds": 90.5,
             "error_line": "cell 4: ZeroDivisionError: division by zero"}
    assert client.post("/api/v1/reports/weekly/runs", json=ended, headers=bearer(token)).status_code == 200
    row = db.session.scalars(sa.select(RunLog)).one()
    assert (row.status, row.duration_seconds, row.error_line) == ("failed", 90.5, ended["error_line"])
    assert row.parameters["dsn"] == "postgresql://u:***@db/x"  # readers never see a password

    path = f"/api/v1/reports/weekly/runs/{run['run_id']}/notebook"
    html = b"<html><body>" + b"<p>cell output</p>" * 1000 + b"</body></html>"
    assert client.put(path, data=html, content_type="text/html", headers=bearer(token)).status_code == 204
    db.session.expire_all()
    assert gzip.decompress(db.session.scalars(sa.select(RunLog)).one().notebook_html) == html
    assert client.put(path, data=html, content_type="application/json", headers=bearer(token)).status_code == 415
    missing = client.put("/api/v1/reports/weekly/runs/no-such-run/notebook", data=html, content_type="text/html", headers=bearer(token))
    assert missing.status_code == 404
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "RUN_NOTEBOOK_MAX_MB": 1}
    huge = client.put(path, data=b"x" * (1024 * 1024 + 1), content_type="text/html", headers=bearer(token))
    assert huge.status_code == 413 and huge.get_json()["error"] == "too_large"
    db.session.expire_all()
    assert gzip.decompress(db.session.scalars(sa.select(RunLog)).one().notebook_html) == html  # the earlier one stays
    app.config["NBPRESS"] = {**app.config["NBPRESS"], "RUN_NOTEBOOK_MAX_MB": 2}
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # the PDF cap: a notebook's own cap rules its endpoint
    big = b"<p>" + b"x" * (1536 * 1024) + b"</p>"
    assert client.put(path, data=big, content_type="text/html", headers=bearer(token)).status_code == 204
    other = project_token("beta", "beta")
    assert client.post("/api/v1/reports/weekly/runs", json=run, headers=bearer(other)).status_code == 403
    assert client.put(path, data=html, content_type="text/html", headers=bearer(other)).status_code == 403


# --- claims, progress, finish --------------------------------------------------------------------


def test_a_request_is_claimed_renewed_and_finished_once(app, client, make_user):
    token = project_token("alpha", "alpha")
    alice = make_user("alice@example.com")
    publication = publish_ok(client, token, report="weekly", run_id="req-run")
    request = queue("weekly", alice, parameters={"week": "2026-11-23", "regions": ["north"]})
    taken = claim(client, token)
    assert taken.status_code == 200
    body = taken.get_json()["request"]
    assert body == {"id": request.public_id, "report": "weekly", "parameters": {"week": "2026-11-23", "regions": ["north"]},
                    "attempt": 1, "lease_seconds": 60, "requested_by": "alice"}
    assert "alice@example.com" not in taken.get_data(as_text=True)
    row = stored(request.public_id)
    assert (row.status, row.stage, row.attempts, row.lease_owner) == ("running", "claimed", 1, "host-a:1")
    assert claim(client, token, worker="host-b:2").status_code == 204  # nothing else queued

    before = row.lease_until
    renewed = progress(client, token, request.public_id, stage="render")
    assert renewed.status_code == 200 and renewed.get_json() == {"cancel": False, "lease_seconds": 60}
    assert stored(request.public_id).stage == "render" and stored(request.public_id).lease_until >= before
    assert progress(client, token, request.public_id, worker="host-b:2").get_json()["error"] == "lease_lost"

    done = finish(client, token, request.public_id, status="succeeded", run_id="req-run", publication=publication["id"])
    assert done.status_code == 200 and done.get_json() == {"status": "succeeded"}
    row = stored(request.public_id)
    assert (row.status, row.run_id, row.finished_at is not None) == ("succeeded", "req-run", True)
    assert row.publication_id == db.session.scalars(sa.select(Publication.id).where(Publication.public_id == publication["id"])).one()
    again = finish(client, token, request.public_id, status="succeeded", run_id="req-run")
    assert again.status_code == 200 and again.get_json() == {"status": "succeeded"}  # a retried finish
    late = progress(client, token, request.public_id)
    assert late.status_code == 409 and late.get_json()["error"] == "lease_lost"
    assert finish(client, token, request.public_id, worker="host-b:2", status="failed").status_code == 409
    assert [e.detail["request"] for e in _events("run_claimed")] == [request.public_id]
    assert [e.detail["status"] for e in _events("run_finished")] == ["succeeded"]
    assert _events("run_progress", None) == []  # too chatty for the audit log (its refusals: credentials only)
    assert [e.detail["reason"] for e in _events("run_finished", "refused")] == ["lease_lost"]


def test_a_token_of_another_project_cannot_claim_or_finish(app, client, make_user):
    alpha, beta = project_token("alpha", "alpha"), project_token("beta", "beta")
    request = queue("weekly", make_user("alice@example.com"), project="alpha")
    assert claim(client, beta).status_code == 204
    assert stored(request.public_id).status == "queued"
    assert claim(client, alpha, reports=["monthly"]).status_code == 204  # the filter holds
    assert claim(client, alpha, reports=["weekly"]).status_code == 200
    for response in (progress(client, beta, request.public_id), finish(client, beta, request.public_id, status="failed")):
        assert response.status_code == 403 and response.get_json()["error"] == "wrong_project"
    assert stored(request.public_id).status == "running"
    assert finish(client, alpha, "nosuchrequest0000000000", status="failed").status_code == 404


def test_a_cancel_reaches_the_worker_on_its_next_progress(app, client, make_user):
    token = project_token("alpha", "alpha")
    request = queue("weekly", make_user("alice@example.com"), project="alpha")
    claim(client, token)
    row = stored(request.public_id)
    row.cancel_requested = True  # as the requester's cancel sets it
    db.session.commit()
    assert progress(client, token, request.public_id).get_json()["cancel"] is True
    assert finish(client, token, request.public_id, status="cancelled").get_json() == {"status": "cancelled"}
    assert stored(request.public_id).status == "cancelled"


# --- the transient rule, lapses, expiry ------------------------------------------------------------


def test_a_transient_failure_is_tried_again_once_then_fails(app, client, make_user):
    token = project_token("alpha", "alpha")
    request = queue("weekly", make_user("alice@example.com"), project="alpha")
    claim(client, token)
    first = finish(client, token, request.public_id, status="failed", error_line="kernel died", transient=True)
    assert first.get_json() == {"status": "queued"}
    row = stored(request.public_id)
    assert (row.status, row.error_line, row.lease_owner, row.finished_at) == ("queued", "attempt 1 failed: kernel died", None, None)
    assert claim(client, token, worker="host-b:2").get_json()["request"]["attempt"] == 2
    second = finish(client, token, request.public_id, worker="host-b:2", status="failed", error_line="kernel died", transient=True)
    assert second.get_json() == {"status": "failed"}  # RUN_MAX_ATTEMPTS (2) tries made
    assert stored(request.public_id).error_line == "kernel died"
    other = queue("weekly", make_user("bob@example.com"), project="alpha")
    claim(client, token)
    permanent = finish(client, token, other.public_id, status="failed", error_line="parameter 'week': got 'x', expected date")
    assert permanent.get_json() == {"status": "failed"}  # not transient: no second try
    assert [e.detail["status"] for e in _events("run_requeued")] == ["queued"]


def test_a_lapsed_lease_queues_the_request_again_then_fails_it(app, client, make_user):
    token = project_token("alpha", "alpha")
    request = queue("weekly", make_user("alice@example.com"), minutes=1, project="alpha")
    claim(client, token)
    lapse(request.public_id)
    again = claim(client, token, worker="host-b:2")  # the claim sweeps first
    assert again.status_code == 200 and again.get_json()["request"]["attempt"] == 2
    assert stored(request.public_id).error_line == run_claims.LAPSE_RETRY
    assert stored(request.public_id).expires_at > utcnow() + dt.timedelta(minutes=25)  # queued again: a fresh window
    gone = progress(client, token, request.public_id)  # the first worker came back: too late
    assert gone.status_code == 409 and gone.get_json()["error"] == "lease_lost"
    lapse(request.public_id)
    assert run_claims.sweep() == {"requeued": 0, "failed": 1, "cancelled": 0, "expired": 0}
    row = stored(request.public_id)
    assert (row.status, row.error_line, row.finished_at is not None) == ("failed", "the worker stopped answering", True)
    assert finish(client, token, request.public_id, worker="host-b:2", status="succeeded").status_code == 409
    assert [e.detail["by"] for e in _events("run_requeued")] == ["sweep"]


def test_a_request_no_worker_takes_expires(app, client, make_user):
    token = project_token("alpha", "alpha")
    old = queue("weekly", make_user("alice@example.com"), minutes=-1, project="alpha")
    fresh = queue("weekly", make_user("bob@example.com"), project="alpha")
    taken = claim(client, token)
    assert taken.get_json()["request"]["id"] == fresh.public_id  # the expired one is never handed out
    row = stored(old.public_id)
    assert (row.status, row.error_line) == ("expired", "no worker took this request within 30 minutes")
    assert [e.detail["request"] for e in _events("run_expired")] == [old.public_id]


def test_no_token_kind_opens_the_other_kinds_endpoints(app, client, make_user, api_token):
    """Read from the OpenAPI document, so the user side's endpoints are held to it too: a
    publisher token opens no user endpoint, a user's access token no publisher endpoint."""
    from publish_server.openapi import build_document

    make_user("alice@example.com")
    tokens = {"publisher": project_token("alpha", None), "bearer": api_token(client, "alice@example.com")}
    with app.test_request_context():
        document = build_document(app)
    checked = {"publisher": 0, "bearer": 0}
    for path, item in document["paths"].items():
        for method, op in item.items():
            kind = next(iter(op["security"][0]), None) if op.get("security") else None
            if kind not in tokens:
                continue
            other = tokens["bearer" if kind == "publisher" else "publisher"]
            url = path.replace("{slug}", "weekly").replace("{run_id}", "r1")
            url = url.replace("{public_id}", "x" * 22).replace("{device_id}", "x" * 22).replace("{", "").replace("}", "")
            response = client.open(url, method=method.upper(), json={}, headers=bearer(other))
            assert response.status_code == 401, (method, path, response.status_code)
            assert b"%PDF" not in response.get_data()
            checked[kind] += 1
    assert checked["publisher"] >= 8 and checked["bearer"] >= 5
