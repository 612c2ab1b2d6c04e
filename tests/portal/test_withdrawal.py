"""Withdrawal: by the publisher token (API) or an operator (CLI), with a reason readers see in a
410 on the API and the pages; the file is no longer served, lists leave it out, audit rows stay."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, Publication
from tests.portal.conftest import make_pdf
from tests.portal.test_publishing import new_publisher_token, publish_ok

API = "/api/v1/publications"
REASON = "Wrong regional figures; replaced by v2"


@pytest.fixture
def world(app, client, make_user, api_token):
    make_user("alice@example.com", groups=("north",))
    publisher = new_publisher_token()
    first = publish_ok(client, publisher, make_pdf(marker="v1"), run_id="r1", audience={"groups": ["north"]})
    second = publish_ok(client, publisher, make_pdf(marker="v2"), run_id="r2", audience={"groups": ["north"]})
    return {"publisher": publisher, "first": first, "second": second,
            "reader": {"Authorization": f"Bearer {api_token(client, 'alice@example.com')}"}}


def withdraw(client, token: str | None, public_id: str, body) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"{API}/{public_id}/withdraw", json=body, headers=headers)


def events(name: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))


def test_the_publisher_withdraws_and_readers_get_410_with_the_reason(app, client, world, login):
    target = world["first"]["id"]
    audit_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    answer = withdraw(client, world["publisher"], target, {"reason": REASON})
    assert answer.status_code == 200 and answer.get_json()["withdrawn_reason"] == REASON

    reader = world["reader"]
    for url in (f"{API}/{target}", f"{API}/{target}/download"):
        gone = client.get(url, headers=reader)
        assert gone.status_code == 410, url
        assert gone.get_json() == {"error": "withdrawn", "message": f"This publication was withdrawn: {REASON}"}
    listed = [p["id"] for p in client.get(API, headers=reader).get_json()["publications"]]
    assert listed == [world["second"]["id"]]  # lists leave withdrawn publications out
    assert client.get(f"{API}/{world['second']['id']}/download", headers=reader).status_code == 200

    login(client, "alice@example.com")
    page = client.get(f"/p/{target}/view")
    assert page.status_code == 410 and REASON in page.get_data(as_text=True)
    assert page.mimetype == "text/html" and b"%PDF" not in page.data and "<h1>Withdrawn</h1>" in page.get_data(as_text=True)
    history = client.get("/reports/weekly_statistics").get_data(as_text=True)
    assert f"/p/{target}/download" not in history and f"/p/{world['second']['id']}/download" in history
    # Named once, with its reason, in the page's main part after the versions that can be read.
    assert history.count("Withdrawn versions") == 1 and history.count(REASON) == 1
    assert history.index("Version history") < history.index("Withdrawn versions") < history.index(REASON)
    assert "Withdrawn" not in history.partition("</title>")[0]

    (row,) = events("publication_withdrawn")
    assert (row.outcome, row.detail["by"], row.detail["reason"], row.detail["publication"]) == ("ok", "publisher ci", REASON, target)
    refused = [e.detail["reason"] for e in events("download") if e.outcome == "refused"]
    assert refused == ["withdrawn", "withdrawn"]
    # Withdrawing added rows and removed none.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) > audit_before


def test_withdrawal_needs_a_publisher_token_and_a_reason(app, client, world):
    target = world["first"]["id"]
    assert withdraw(client, None, target, {"reason": REASON}).status_code == 401
    assert withdraw(client, "nbp_wrong", target, {"reason": REASON}).status_code == 401
    reader_token = world["reader"]["Authorization"].removeprefix("Bearer ")
    assert withdraw(client, reader_token, target, {"reason": REASON}).status_code == 401  # a reader cannot
    assert withdraw(client, world["publisher"], target, {"reason": "  "}).status_code == 400
    assert withdraw(client, world["publisher"], target, {"reason": "x\u0000y"}).status_code == 400
    assert withdraw(client, world["publisher"], target, {}).status_code == 400
    assert withdraw(client, world["publisher"], "NoSuchPublication", {"reason": REASON}).status_code == 404
    db.session.expire_all()
    assert db.session.scalars(sa.select(Publication.withdrawn_at)).all() == [None, None]
    assert [e.detail["reason"] for e in events("publication_withdrawn")] == ["no_token", "bad_token", "bad_token", "not_found"]


def test_the_operator_withdraws_from_the_cli_and_the_first_reason_stands(app, client, world):
    runner = app.test_cli_runner()
    target = world["second"]["id"]
    done = runner.invoke(args=["publications", "withdraw", target, "--reason", REASON])
    assert done.exit_code == 0, done.output
    assert f"withdrew weekly_statistics v2 ({target}): {REASON}" in done.output
    again = runner.invoke(args=["publications", "withdraw", target, "--reason", "something else"])
    assert again.exit_code == 0 and "already withdrawn" in again.output and REASON in again.output
    assert runner.invoke(args=["publications", "withdraw", target]).exit_code == 2  # --reason is required
    listed = runner.invoke(args=["publications", "list"]).output
    assert "withdrawn" in listed
    (row,) = events("publication_withdrawn")
    assert (row.detail["by"], row.detail["reason"]) == ("operator", REASON)
    gone = client.get(f"{API}/{target}", headers=world["reader"])
    assert gone.status_code == 410 and REASON in gone.get_json()["message"]
