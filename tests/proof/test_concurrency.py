"""Every limit that bounds guessing holds when 50 requests arrive at once (gunicorn, 2 workers x 4 threads).

One portal per database (SQLite and PostgreSQL) serves the module; each test uses its own
account, so the counters of one test never meet another's. The 50 requests come from 50
addresses (``X-Forwarded-For`` through one trusted proxy hop), so Flask-Limiter's per-IP limits
never answer for the database counters under test. What was checked is read back from the
database's audit rows and the mail outbox, not only from the answers.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.proof.load import PASSWORD, portal, seed_instance
from tests.proof.test_load import database_for

AT_ONCE = 50
CODE_MAX_ATTEMPTS = 5  # the defaults the portal runs with here
CODES_PER_HOUR = 5
FAILURES_PER_HOUR = 10  # lowered to the smallest allowed value: the hard cap, not the growing delay, answers


@dataclass
class Served:
    kind: str
    base: str
    instance: Path
    database: sa.Engine

    def audit_count(self, event: str, outcome: str, user_email: str | None = None) -> int:
        query = "SELECT count(*) FROM audit_events a WHERE a.event = :event AND a.outcome = :outcome"
        if user_email is not None:
            query += " AND a.user_id = (SELECT id FROM users WHERE email = :email)"
        with self.database.connect() as conn:
            return conn.execute(sa.text(query), {"event": event, "outcome": outcome, "email": user_email}).scalar_one()

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        found = []
        for path in sorted((self.instance / "outbox").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address in str(message["To"]):
                found.append(message)
        return found

    def last_code(self, address: str) -> str:
        text = self.mails_to(address)[-1].get_body(preferencelist=("plain",)).get_content()
        return re.search(r"^\s+(\d{6,10})\s*$", text, re.MULTILINE).group(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    instance = tmp_path_factory.mktemp(f"concurrency-{request.param}") / "instance"
    url = database_for(request, request.param)
    seed_instance(instance, users=5, database_url=url)
    with (instance / "portal.toml").open("a") as settings:
        settings.write(f"TRUSTED_PROXIES = 1\nLOGIN_FAILURES_PER_HOUR = {FAILURES_PER_HOUR}\n")
    engine = sa.create_engine(url or f"sqlite:///{instance / 'portal.sqlite3'}")
    patch = pytest.MonkeyPatch()
    patch.setenv("NBPRESS_RATELIMIT_PER_PROCESS", "true")  # a test bench: the counters under test live in the database
    try:
        with portal(instance, workers=2, threads=4) as server:
            yield Served(request.param, server.base, instance, engine)
    finally:
        patch.undo()
        engine.dispose()


def at_once(calls) -> list[requests.Response]:
    """Run the calls together: every thread waits at a barrier, then all send."""
    barrier = threading.Barrier(len(calls))

    def send(call):
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def post(served: Served, path: str, body: dict, address: str) -> requests.Response:
    return requests.post(served.base + path, json=body, headers={"X-Forwarded-For": address}, timeout=60)


def answers(responses: list[requests.Response]) -> Counter:
    return Counter((r.status_code, r.json().get("error")) for r in responses)


def start_challenge(served: Served, address: str) -> dict:
    started = post(served, "/api/v1/auth/login", {"email": address, "password": PASSWORD}, "192.0.2.1")
    assert started.status_code == 202, started.text
    return started.json()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def test_fifty_wrong_codes_at_once_are_checked_exactly_five_times(served, proof):
    proof.case("concurrency", f"{served.kind}: {AT_ONCE} wrong codes at once on one challenge",
               f"exactly {CODE_MAX_ATTEMPTS} codes are checked (each 'tries left' said once), the rest end the challenge, "
               "and the right code is refused afterwards")
    address = "reader0@example.org"
    started = start_challenge(served, address)
    code = served.last_code(address)
    body = {"challenge_id": started["challenge_id"], "client_secret": started["client_secret"], "code": wrong(code)}
    responses = at_once([lambda n=n: post(served, "/api/v1/auth/verify", body, f"198.51.100.{n}") for n in range(AT_ONCE)])
    assert {r.status_code for r in responses} == {401}
    messages = Counter(r.json()["message"] for r in responses)
    left = {m: n for m, n in messages.items() if "left" in m}
    assert sorted(left.values()) == [1] * (CODE_MAX_ATTEMPTS - 1), messages  # "4 tries left" ... "1 try left", once each
    assert messages["Too many wrong codes. Please sign in again."] == 1, messages
    assert served.audit_count("login.code", "failed", address) == CODE_MAX_ATTEMPTS
    late = post(served, "/api/v1/auth/verify", dict(body, code=code), "198.51.100.200")
    assert late.status_code == 401 and late.json()["error"] == "challenge_ended"


@pytest.mark.parametrize("account", ["reader1@example.org", "nobody@example.org"])
def test_fifty_wrong_passwords_from_fifty_addresses_are_checked_exactly_up_to_the_cap(served, account, proof):
    exists = account.startswith("reader")
    proof.case("concurrency", f"{served.kind}: {AT_ONCE} wrong passwords at once from {AT_ONCE} addresses, {'existing' if exists else 'unknown'} account",
               f"exactly {FAILURES_PER_HOUR} passwords are checked (401), the other {AT_ONCE - FAILURES_PER_HOUR} are braked (429), "
               "the same for an existing and an unknown account; the right password then waits too")
    body = {"email": account, "password": "not the password at all"}
    responses = at_once([lambda n=n: post(served, "/api/v1/auth/login", body, f"203.0.113.{n}") for n in range(AT_ONCE)])
    assert answers(responses) == {(401, "invalid_credentials"): FAILURES_PER_HOUR,
                                  (429, "too_many_requests"): AT_ONCE - FAILURES_PER_HOUR}
    assert served.audit_count("login.password", "failed", account if exists else None) >= FAILURES_PER_HOUR
    if exists:
        assert served.audit_count("login.password", "failed", account) == FAILURES_PER_HOUR
    again = post(served, "/api/v1/auth/login", dict(body, password=PASSWORD), "203.0.113.250")
    assert (again.status_code, again.json()["error"]) == (429, "too_many_requests")


def test_fifty_sign_ins_at_once_email_at_most_five_codes(served, proof):
    proof.case("concurrency", f"{served.kind}: {AT_ONCE} correct sign-ins at once from new devices",
               f"exactly {CODES_PER_HOUR} codes are emailed (202), the other {AT_ONCE - CODES_PER_HOUR} are refused with 429")
    address = "reader2@example.org"
    body = {"email": address, "password": PASSWORD}
    responses = at_once([lambda n=n: post(served, "/api/v1/auth/login", body, f"198.18.0.{n}") for n in range(AT_ONCE)])
    seen = answers(responses)
    # The rest wait: too_many_codes, or too_many_requests while ten password checks of this account
    # were in flight (a slot of the password brake is held until the password proves right).
    assert seen[(202, None)] == CODES_PER_HOUR, seen
    assert set(seen) <= {(202, None), (429, "too_many_codes"), (429, "too_many_requests")}, seen
    assert len(served.mails_to(address)) == CODES_PER_HOUR


def test_fifty_resends_at_once_email_the_codes_left_in_the_hour(served, proof):
    proof.case("concurrency", f"{served.kind}: {AT_ONCE} resends at once on one challenge",
               f"the first code plus exactly {CODES_PER_HOUR - 1} resent ones are emailed; the rest are refused with too_many_codes")
    address = "reader3@example.org"
    started = start_challenge(served, address)
    body = {"challenge_id": started["challenge_id"], "client_secret": started["client_secret"]}
    responses = at_once([lambda n=n: post(served, "/api/v1/auth/resend", body, f"198.18.1.{n}") for n in range(AT_ONCE)])
    assert answers(responses) == {(202, None): CODES_PER_HOUR - 1, (429, "too_many_codes"): AT_ONCE - CODES_PER_HOUR + 1}
    assert len(served.mails_to(address)) == CODES_PER_HOUR
    # Mails may be written in another order than the codes were stored: exactly one of them still works.
    codes = [re.search(r"^\s+(\d{6,10})\s*$", m.get_body(preferencelist=("plain",)).get_content(), re.MULTILINE).group(1)
             for m in served.mails_to(address)]
    tried = [post(served, "/api/v1/auth/verify", dict(body, code=code), "192.0.2.1").status_code for code in codes]
    assert tried.count(200) == 1, tried


def test_braked_answers_are_the_same_for_existing_and_unknown_accounts(served, proof):
    proof.case("concurrency", f"{served.kind}: braked sign-ins, existing vs unknown account",
               "same status and body; the median times (interleaved tries) are reported in the figures, not asserted (a noisy, shared machine)")
    timings: dict[str, list[float]] = {}
    bodies: dict[str, set[tuple[int, str]]] = {}
    accounts = ("reader4@example.org", "nobody-else@example.org")
    for account in accounts:
        for n in range(FAILURES_PER_HOUR):
            post(served, "/api/v1/auth/login", {"email": account, "password": "still wrong, still wrong"}, f"203.0.113.{150 + n}")
    for n in range(31):  # interleaved, so both see the same machine at the same moments
        for account in accounts if n % 2 else reversed(accounts):
            response = post(served, "/api/v1/auth/login", {"email": account, "password": "still wrong, still wrong"}, f"203.0.113.{100 + n}")
            timings.setdefault(account, []).append(response.elapsed.total_seconds())
            bodies.setdefault(account, set()).add((response.status_code, response.text))
    existing, unknown = accounts
    assert bodies[existing] == bodies[unknown]
    assert {status for status, _ in bodies[unknown]} == {429}
    median = {account: sorted(values)[len(values) // 2] * 1000 for account, values in timings.items()}
    proof.figures(f"brake timing: {served.kind}", {
        "existing_median_ms": round(median[existing], 2), "unknown_median_ms": round(median[unknown], 2),
        "ratio": round(median[existing] / median[unknown], 2), "requests_each": 31})
