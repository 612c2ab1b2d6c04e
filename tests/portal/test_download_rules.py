"""Every rule of a download, on the one-query path (publish_server.download_gate), page and API.

Downloads check the token's state and the grant rule in one SELECT of their own, apart from the
path every other signed-in request takes; so each rule is tried here on the two file URLs
(``/p/<id>/download`` with the access cookie, ``/api/v1/publications/<id>/download`` with the
Bearer header): deny-listed jti, a token issued before ``tokens_valid_after``, a disabled user,
a revoked device, a one-time password, the grant rule (report, variant, publication and group
grants; admins), withdrawal (410), and the audit row. Each test first shows the same request
succeeding, so it fails when its rule is dropped, not only when everything is refused.
Tokens are issued by the portal's own ``create_access_token`` (with its claims loader).
"""

from __future__ import annotations

import datetime as dt
import io
import secrets

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token

from publish_server.access import reader_ids
from publish_server.extensions import db
from publish_server.models import AuditEvent, Device, Grant, Group, Publication, Report, utcnow
from publish_server.signin import session_tokens
from publish_server.storage import FileStore
from tests.portal.conftest import make_pdf
from tests.portal.test_pages import publish  # noqa: F401  (fixture)

VIAS = ("page", "api")


def fetch(client, token: str, public_id: str, via: str):
    """GET the file the way a browser (cookie) or an API client (Bearer) does."""
    if via == "page":
        client.set_cookie("access_token_cookie", token)
        return client.get(f"/p/{public_id}/download")
    client.delete_cookie("access_token_cookie")
    return client.get(f"/api/v1/publications/{public_id}/download", headers={"Authorization": f"Bearer {token}"})


def token_for(user, **claims) -> str:
    return create_access_token(identity=user.public_id, additional_claims=claims)


def assert_sent(response, data: bytes | None = None) -> None:
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"] == "application/pdf"
    if data is not None:
        assert response.get_data() == data
    response.close()


def assert_signed_out(response, via: str) -> None:
    """A token that does not count: pages go to sign-in, the API answers 401; no file either way."""
    if via == "page":
        assert response.status_code == 303 and response.headers["Location"].startswith("/login"), response.status_code
    else:
        assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    assert response.headers.get("Content-Type", "").startswith(("text/html", "application/json"))


def downloads(outcome: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    query = sa.select(AuditEvent).where(AuditEvent.event == "download").order_by(AuditEvent.id)
    return list(db.session.scalars(query if outcome is None else query.where(AuditEvent.outcome == outcome)))


@pytest.fixture
def granted(make_user, publish):
    """ana reads weekly_statistics (a report grant); returns (ana, publication, pdf bytes)."""
    ana = make_user("ana@example.org")
    publication, data = publish("weekly_statistics", 1, "2026-W47", to=(ana,))
    return ana, publication, data


# --- the token's state ---------------------------------------------------------------------------


def test_a_deny_listed_token_opens_no_file(app, client, granted):
    ana, publication, data = granted
    for via in VIAS:
        token = token_for(ana)
        assert_sent(fetch(client, token, publication.public_id, via), data)
        session_tokens.revoke(token)  # what sign-out does
        db.session.commit()
        assert_signed_out(fetch(client, token, publication.public_id, via), via)


def test_a_token_issued_before_tokens_valid_after_opens_no_file(app, client, granted):
    ana, publication, data = granted
    for via in VIAS:
        token = token_for(ana)
        assert_sent(fetch(client, token, publication.public_id, via), data)
        session_tokens.revoke_all_for(ana)  # password change, reset, "sign out everywhere"
        db.session.commit()
        assert_signed_out(fetch(client, token, publication.public_id, via), via)
        assert_sent(fetch(client, token_for(ana), publication.public_id, via), data)  # a later token counts


def test_a_disabled_users_token_opens_no_file(app, client, granted):
    ana, publication, data = granted
    token = token_for(ana)
    for via in VIAS:
        assert_sent(fetch(client, token, publication.public_id, via), data)
    ana.active = False
    db.session.commit()
    for via in VIAS:
        assert_signed_out(fetch(client, token, publication.public_id, via), via)


def test_a_revoked_devices_token_opens_no_file(app, client, granted):
    ana, publication, data = granted
    device = Device(user_id=ana.id, secret_hash=secrets.token_hex(32), trusted_until=utcnow() + dt.timedelta(days=30))
    db.session.add(device)
    db.session.commit()
    token = token_for(ana, did=device.public_id)
    for via in VIAS:
        assert_sent(fetch(client, token, publication.public_id, via), data)
        assert_signed_out(fetch(client, token_for(ana, did="no-such-device"), publication.public_id, via), via)
    device.revoked_at = utcnow()
    db.session.commit()
    for via in VIAS:
        assert_signed_out(fetch(client, token, publication.public_id, via), via)


def test_tokens_that_are_not_a_users_access_token_open_no_file(app, client, granted):
    ana, publication, data = granted
    refresh = create_refresh_token(identity=ana.public_id)
    nobody = create_access_token(identity="no-such-user")
    header, claims, signature = token_for(ana).split(".")
    tampered = ".".join((header, claims, ("B" if signature[0] == "A" else "A") + signature[1:]))  # another signature
    for via in VIAS:
        for token in (refresh, nobody, tampered, "not-a-token"):
            assert_signed_out(fetch(client, token, publication.public_id, via), via)
    assert not downloads()  # refused before the download is looked at: nothing to audit as a download


def test_a_one_time_password_opens_no_file_until_it_is_changed(app, client, granted):
    ana, publication, data = granted
    token = token_for(ana)
    ana.must_change_password = True
    db.session.commit()
    page = fetch(client, token, publication.public_id, "page")
    assert page.status_code == 302 and page.headers["Location"] == "/account?reason=change"
    api = fetch(client, token, publication.public_id, "api")
    assert api.status_code == 403 and api.get_json()["error"] == "password_change_required"
    ana.must_change_password = False
    db.session.commit()
    for via in VIAS:
        assert_sent(fetch(client, token, publication.public_id, via), data)


# --- the grant rule ------------------------------------------------------------------------------


@pytest.fixture
def variants(app, make_user):
    """Report "regional" with north and south variants and one without; one reader per kind of grant.

    Files are not needed to decide access: every publication points at one stored PDF.
    """
    stored = FileStore(app.config["FILES_DIR"]).put(io.BytesIO(make_pdf()), limit=1 << 20)
    report = Report(slug="regional", title="Regional")
    db.session.add(report)
    db.session.flush()
    pubs = {}
    for label in ("north", "south", ""):
        pubs[label or "plain"] = Publication(report=report, version=1, run_id=f"r-{label}", period_label="2026-W47",
                                             variant={"region": label} if label else {}, variant_label=label,
                                             sha256=stored.sha256, size=stored.size, pages=1)
    db.session.add_all(pubs.values())
    db.session.flush()
    readers = {
        "report grant": make_user("report@example.org"),
        "variant grant": make_user("variant@example.org"),
        "publication grant": make_user("publication@example.org"),
        "group grant": make_user("member@example.org", groups=("readers",)),
        "no grant": make_user("outsider@example.org", groups=("others",)),
        "admin": make_user("admin@example.org", role="admin"),
    }
    readers_group = db.session.scalars(sa.select(Group).where(Group.name == "readers")).one()
    db.session.add_all([
        Grant(report_id=report.id, user_id=readers["report grant"].id),
        Grant(report_id=report.id, variant="north", user_id=readers["variant grant"].id),
        Grant(publication_id=pubs["south"].id, user_id=readers["publication grant"].id),
        Grant(report_id=report.id, group_id=readers_group.id),
    ])
    db.session.commit()
    return readers, pubs


READS = {
    "report grant": {"north", "south", "plain"},  # every variant and version of the report
    "variant grant": {"north"},  # that variant only
    "publication grant": {"south"},  # that one publication, nothing more of the report
    "group grant": {"north", "south", "plain"},  # through a group the user belongs to
    "no grant": set(),  # in a group, but not a granted one
    "admin": {"north", "south", "plain"},  # admins read everything
}


@pytest.mark.parametrize("rule", list(READS))
def test_the_grant_rule_decides_which_files_open(app, client, variants, rule):
    readers, pubs = variants
    token = token_for(readers[rule])
    for via in VIAS:
        opened = set()
        for name, publication in pubs.items():
            response = fetch(client, token, publication.public_id, via)
            if response.status_code == 200:
                opened.add(name)
            else:
                assert response.status_code == 404, (via, name, response.status_code)
            response.close()
        assert opened == READS[rule], (rule, via)


def test_the_notification_audience_counts_group_members_only(app, variants):
    """reader_ids shares the grant rule's SQL; a group grant once matched any member of any group."""
    readers, pubs = variants
    audience = set(db.session.scalars(reader_ids(pubs["plain"].id)))
    expected = {readers[rule].id for rule in ("report grant", "group grant")}  # admins are not an audience
    assert audience == expected


# --- withdrawal and the audit row ----------------------------------------------------------------


def test_a_withdrawn_publication_answers_410_with_its_reason(app, client, granted):
    ana, publication, data = granted
    token = token_for(ana)
    for via in VIAS:
        assert_sent(fetch(client, token, publication.public_id, via), data)
    publication.withdrawn_at, publication.withdrawn_reason = utcnow(), "figures were wrong"
    db.session.commit()
    for via in VIAS:
        response = fetch(client, token, publication.public_id, via)
        assert response.status_code == 410 and "figures were wrong" in response.get_data(as_text=True)
    assert [e.detail["reason"] for e in downloads("refused")] == ["withdrawn", "withdrawn"]


def test_every_download_and_refusal_leaves_its_audit_row(app, client, granted, make_user):
    ana, publication, data = granted
    token = token_for(ana)
    for via in VIAS:
        assert_sent(fetch(client, token, publication.public_id, via), data)
        assert fetch(client, token, "AAAAAAAAAAAAAAAAAAAAAA", via).status_code == 404
        assert fetch(client, token, "not.an.id", via).status_code == 404
    rows = [(e.outcome, e.user_id, e.detail.get("via"), e.detail.get("publication") or e.detail.get("requested"))
            for e in downloads()]
    assert rows == [
        ("ok", ana.id, "page", publication.public_id), ("refused", ana.id, "page", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("refused", ana.id, "page", "(malformed)"),
        ("ok", ana.id, "api", publication.public_id), ("refused", ana.id, "api", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("refused", ana.id, "api", "(malformed)"),
    ]
    assert {e.detail["reason"] for e in downloads("refused")} == {"not_found"}
