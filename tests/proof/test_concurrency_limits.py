"""The per-IP and per-address limits of password reset and withdrawal hold when 50 requests
arrive at once (gunicorn, 1 worker x 8 threads: Flask-Limiter's memory storage counts in one
process, as the portal requires without a shared store).

What was let through is read back from the mail outbox and the audit rows, not only from the
answers. The limits are the shipped defaults.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.proof.load import portal, seed_instance
from tests.proof.test_concurrency import AT_ONCE, at_once

RESETS_PER_ADDRESS = 3  # "3 per hour" for one submitted address
RESETS_PER_IP = 5  # "5 per 15 minutes" from one client address
WITHDRAW_FAILURES_PER_IP = 30  # "30 per minute", failed tries


@dataclass
class Served:
    base: str
    instance: Path
    database: sa.Engine
    publisher_token: str
    publication: str

    def reset_mails_to(self, address: str) -> int:
        texts = (path.read_text(errors="replace") for path in (self.instance / "outbox").glob("*.eml"))
        return sum(1 for text in texts if address in text and "/password/reset/" in text)

    def audit(self, event: str) -> Counter:
        with self.database.connect() as conn:
            rows = conn.execute(sa.text("SELECT outcome FROM audit_events WHERE event = :event"), {"event": event})
            return Counter(outcome for (outcome,) in rows)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    instance = tmp_path_factory.mktemp("limits") / "instance"
    token, known = seed_instance(instance, users=3)
    with (instance / "portal.toml").open("a") as settings:
        settings.write("TRUSTED_PROXIES = 1\n")
    engine = sa.create_engine(f"sqlite:///{instance / 'portal.sqlite3'}")
    try:
        with portal(instance, workers=1, threads=8) as server:
            yield Served(server.base, instance, engine, token, next(iter(known)))
    finally:
        engine.dispose()


def forgot_form(served: Served) -> tuple[requests.Session, str]:
    """A browser-like session holding the form's cookie, and the hidden field's value."""
    session = requests.Session()
    page = session.get(served.base + "/password/forgot", timeout=30)
    token = re.search(r'name="reset_csrf" value="([^"]+)"', page.text).group(1)
    return session, token


def ask_reset(served: Served, address: str, client_ip: str) -> int:
    session, token = forgot_form(served)
    answer = session.post(served.base + "/password/forgot", data={"email": address, "reset_csrf": token},
                          headers={"X-Forwarded-For": client_ip}, timeout=60)
    return answer.status_code


def test_fifty_reset_requests_for_one_address_mail_it_three_links(served, proof):
    proof.case("concurrency", f"{AT_ONCE} password-reset requests at once for one address, from {AT_ONCE} addresses",
               f"exactly {RESETS_PER_ADDRESS} are answered and mailed; the other {AT_ONCE - RESETS_PER_ADDRESS} get 429")
    address = "reader0@example.org"
    statuses = at_once([lambda n=n: ask_reset(served, address, f"198.51.100.{n}") for n in range(AT_ONCE)])
    assert Counter(statuses) == {200: RESETS_PER_ADDRESS, 429: AT_ONCE - RESETS_PER_ADDRESS}
    deadline = time.monotonic() + 10  # each mail goes out after its answer has gone (call_on_close)
    while served.reset_mails_to(address) < RESETS_PER_ADDRESS and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # and no more follow
    assert served.reset_mails_to(address) == RESETS_PER_ADDRESS


def test_fifty_reset_requests_from_one_client_answer_five(served, proof):
    proof.case("concurrency", f"{AT_ONCE} password-reset requests at once from one client address, for {AT_ONCE} addresses",
               f"exactly {RESETS_PER_IP} are answered; the other {AT_ONCE - RESETS_PER_IP} get 429, for known and unknown addresses alike")
    # Each address once (the per-address limit must not answer first): two accounts, the rest unknown.
    addresses = ["reader1@example.org", "reader2@example.org"] + [f"nobody{n}@example.org" for n in range(AT_ONCE - 2)]
    statuses = at_once([lambda a=a: ask_reset(served, a, "203.0.113.7") for a in addresses])
    assert Counter(statuses) == {200: RESETS_PER_IP, 429: AT_ONCE - RESETS_PER_IP}


def test_fifty_withdrawals_with_guessed_tokens_are_tried_thirty_times(served, proof):
    proof.case("concurrency", f"{AT_ONCE} withdrawals at once with guessed publisher tokens from one client address",
               f"exactly {WITHDRAW_FAILURES_PER_IP} tokens are checked (401), the other {AT_ONCE - WITHDRAW_FAILURES_PER_IP} "
               "get 429, and nothing is withdrawn")

    def withdraw(token: str) -> int:
        return requests.post(served.base + f"/api/v1/publications/{served.publication}/withdraw",
                             json={"reason": "wrong figures"}, timeout=60,
                             headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "192.0.2.77"}).status_code

    # Successes give their slot back: the publisher's own withdrawals (idempotent) use up nothing.
    assert [withdraw(served.publisher_token) for _ in range(WITHDRAW_FAILURES_PER_IP + 5)] == [200] * (WITHDRAW_FAILURES_PER_IP + 5)
    before = served.audit("publication_withdrawn")

    def guess(n: int) -> int:
        return withdraw(f"nbp_guess{n:040d}")

    statuses = at_once([lambda n=n: guess(n) for n in range(AT_ONCE)])
    assert Counter(statuses) == {401: WITHDRAW_FAILURES_PER_IP, 429: AT_ONCE - WITHDRAW_FAILURES_PER_IP}
    after = served.audit("publication_withdrawn")
    assert after["refused"] - before["refused"] == WITHDRAW_FAILURES_PER_IP
    assert after["ok"] == before["ok"]
    assert guess(AT_ONCE) == 429 and withdraw(served.publisher_token) == 429  # the window is spent for this client
