"""The run request limits hold across processes: gunicorn with 2 workers x 4 threads, 50 asks
released at once by one user; SQLite and PostgreSQL. The count is read back from the database
and the audit log, not only from the answers."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from tests.portal.run_helpers import SCHEMA
from tests.proof.load import PASSWORD, REPORT, code_from_outbox, portal, seed_instance
from tests.proof.test_concurrency import AT_ONCE, at_once
from tests.proof.test_load import database_for

PER_USER = 2  # RUN_MAX_ACTIVE_PER_USER's default
ADDRESS = "reader0@example.org"


def _allow_runs(engine: sa.Engine) -> None:
    """The report as its worker described it, and a run grant for the reader (read access: the seed's group grant)."""
    with engine.begin() as conn:
        report_id = conn.execute(sa.text("SELECT id FROM reports WHERE slug = :slug"), {"slug": REPORT}).scalar_one()
        user_id = conn.execute(sa.text("SELECT id FROM users WHERE email = :email"), {"email": ADDRESS}).scalar_one()
        conn.execute(sa.text("INSERT INTO report_profiles (report_id, parameters, schedule, next_runs, owners, runnable, updated_at) "
                             "VALUES (:r, :p, '{}', '[]', '[]', :t, CURRENT_TIMESTAMP)"),
                     {"r": report_id, "p": json.dumps(SCHEMA), "t": True})
        conn.execute(sa.text("INSERT INTO run_grants (report_id, user_id, created_at) VALUES (:r, :u, CURRENT_TIMESTAMP)"),
                     {"r": report_id, "u": user_id})


def _access_token(base: str, outbox) -> str:
    before = set(outbox.glob("*.eml"))
    started = requests.post(f"{base}/api/v1/auth/login", json={"email": ADDRESS, "password": PASSWORD}, timeout=30)
    assert started.status_code == 202, started.text
    body = started.json()
    code = code_from_outbox(outbox, ADDRESS, before, time.monotonic() + 30)
    verified = requests.post(f"{base}/api/v1/auth/verify", json={"challenge_id": body["challenge_id"],
                                                                "client_secret": body["client_secret"], "code": code}, timeout=30)
    assert verified.status_code == 200, verified.text
    return verified.json()["access_token"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_fifty_run_requests_at_once_across_two_workers_store_exactly_the_limit(request, tmp_path, kind, proof):
    proof.case("concurrency", f"{AT_ONCE} run requests at once by one user, gunicorn 2 workers x 4 threads ({kind})",
               f"exactly {PER_USER} are queued (RUN_MAX_ACTIVE_PER_USER); the other {AT_ONCE - PER_USER} get 429 run_limit")
    instance = tmp_path / "instance"
    url = database_for(request, kind)
    seed_instance(instance, users=1, database_url=url)
    engine = sa.create_engine(url or f"sqlite:///{instance / 'portal.sqlite3'}")
    try:
        _allow_runs(engine)
        with portal(instance, workers=2, threads=4) as server:
            server.wait_for_workers(2)
            headers = {"Authorization": f"Bearer {_access_token(server.base, instance / 'outbox')}"}
            body = {"parameters": {"title": "Week 48"}}
            answers = at_once([lambda: requests.post(f"{server.base}/api/v1/reports/{REPORT}/run-requests", json=body,
                                                     headers=headers, timeout=60) for _ in range(AT_ONCE)])
        statuses = Counter(a.status_code for a in answers)
        assert statuses == {202: PER_USER, 429: AT_ONCE - PER_USER}, statuses
        assert {a.json()["error"] for a in answers if a.status_code == 429} == {"run_limit"}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM run_requests")).scalar_one() == PER_USER
            audited = Counter(conn.execute(sa.text("SELECT outcome FROM audit_events WHERE event = 'run_requested'")).scalars())
        assert audited == {"ok": PER_USER, "refused": AT_ONCE - PER_USER}
    finally:
        engine.dispose()
