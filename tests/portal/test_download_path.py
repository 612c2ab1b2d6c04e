"""The download hot path: its query budget, one query for token state and grant, sendfile, and X-Accel-Redirect.

Every rule of a download still holds on the fast path (JWT, deny-list, grant, audit row, headers);
these tests pin what makes it fast, so a change that quietly brings back a query per request, or a
middleware that reads the file in Python, fails here.
"""

from __future__ import annotations

import re
import sys

import pytest
import sqlalchemy as sa
from werkzeug.test import EnvironBuilder

from publish_server import create_app
from publish_server.access import Downloadable, get_downloadable, visible_publications
from publish_server.errors import ConfigError, NotFound
from publish_server.extensions import db
from publish_server.models import AuditEvent, Publication
from publish_server.storage import FileStore
from tests.portal.conftest import base_config
from tests.portal.test_pages import publish, world  # noqa: F401  (fixtures)

PREFIX = "/_nbpress_files"


@pytest.fixture
def statements(app):
    """The SQL statements this test sends from here on (clear the list to start counting)."""
    sent: list[str] = []

    def on_execute(_conn, _cursor, statement, *_args):
        sent.append(" ".join(statement.split()))

    event_target = db.engine
    sa.event.listen(event_target, "before_cursor_execute", on_execute)
    yield sent
    sa.event.remove(event_target, "before_cursor_execute", on_execute)


def _downloads(outcome: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "download", AuditEvent.outcome == outcome)))


# --- cost -------------------------------------------------------------------------------------------


def test_a_signed_in_download_costs_two_sql_statements(client, login, world, statements):
    """The token state (user, deny-list, device) and the grant + publication in one SELECT, then the
    audit INSERT: on Flask's path (a HEAD, which the express path leaves to it; the express path's
    own count is in test_express_downloads)."""
    login(client, "alice@example.org")
    url = f"/p/{world['weekly'][0][0].public_id}/download"
    client.head(url).close()  # warm up
    statements.clear()
    response = client.head(url)
    assert response.status_code == 200
    queries = [s for s in statements if not s.upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    assert len(queries) == 2, queries
    for part in ("FROM users", "revoked_tokens", "devices", "grants", "publications", "reports"):
        assert part in queries[0], part
    assert queries[1].startswith("INSERT INTO audit_events")


def test_a_download_verifies_its_token_with_one_decode(client, login, world, monkeypatch):
    """flask-jwt-extended alone decodes a token twice (unverified, then verified) per check; the
    portal's manager decodes it once, verified (the forged-token cases of test_auth still refuse)."""
    import jwt as pyjwt

    login(client, "alice@example.org")
    url = f"/p/{world['weekly'][0][0].public_id}/download"
    decodes: list[bool] = []
    real = pyjwt.api_jwt.PyJWT.decode_complete

    def counted(self, jwt, key="", *args, **kwargs):
        decodes.append(bool(key))  # a key: verified
        return real(self, jwt, key, *args, **kwargs)

    monkeypatch.setattr(pyjwt.api_jwt.PyJWT, "decode_complete", counted)
    response = client.get(url)
    assert response.status_code == 200
    response.close()
    assert decodes == [True]


def _limiter_resolutions(call) -> int:
    """How often Flask-Limiter resolved a request's limits during ``call()`` (observed with a
    profile hook: the limiter itself runs unchanged)."""
    seen = []

    def hook(frame, event, _arg):
        if event == "call" and frame.f_code.co_name == "_check_request_limit":
            seen.append(1)

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return len(seen)


def test_downloads_skip_the_limiters_resolution_and_limited_views_keep_it(client, login, make_user, api_token, world):
    login(client, "alice@example.org")
    token = api_token(client, "alice@example.org")
    public_id = world["weekly"][0][0].public_id
    for path, headers in ((f"/p/{public_id}/download", {}), (f"/p/{public_id}/view", {}),
                          (f"/api/v1/publications/{public_id}/download", {"Authorization": f"Bearer {token}"})):
        assert _limiter_resolutions(lambda: client.get(path, headers=headers).close()) == 0, path
    assert _limiter_resolutions(lambda: client.post("/api/v1/auth/login", json={"email": "x@example.org", "password": "x"})) >= 1


def test_the_file_goes_out_through_the_servers_file_wrapper(app, client, login, world):
    """gunicorn sends a body by sendfile only when the app returns its ``wsgi.file_wrapper``
    untouched: no middleware or after_request hook may turn the file into Python-read chunks."""

    class ServerFileWrapper:
        def __init__(self, file, block_size=8192):
            self.file = file

        def __iter__(self):
            return iter(lambda: self.file.read(8192), b"")

        def close(self):
            self.file.close()

    login(client, "alice@example.org")
    publication, data = world["weekly"][1]
    cookie = client.get_cookie("access_token_cookie").value
    environ = EnvironBuilder(path=f"/p/{publication.public_id}/download", headers={"Cookie": f"access_token_cookie={cookie}"},
                             environ_overrides={"wsgi.file_wrapper": ServerFileWrapper}).get_environ()
    status = []
    body = app(environ, lambda s, h, e=None: status.append(s))
    try:
        assert status == ["200 OK"]
        assert isinstance(body, ServerFileWrapper)
        assert body.file.read() == data
    finally:
        body.close()


# --- the one-query grant check --------------------------------------------------------------------


def test_get_downloadable_follows_the_same_grant_rule_as_the_lists(app, make_user, world):
    admin = make_user("admin@example.org", role="admin")
    outsider = make_user("outsider@example.org")
    everything = list(db.session.scalars(sa.select(Publication)))
    for user in (world["alice"], world["bob"], admin, outsider):
        visible = {p.public_id for p in db.session.scalars(visible_publications(user))}
        for publication in everything:
            if publication.public_id in visible:
                found = get_downloadable(user, publication.public_id)
                assert found == Downloadable(publication.public_id, publication.sha256, publication.report.slug,
                                             publication.version, publication.period_label, publication.created_at)
            else:
                with pytest.raises(NotFound):
                    get_downloadable(user, publication.public_id)
    assert {p.public_id for p in db.session.scalars(visible_publications(admin))} == {p.public_id for p in everything}
    for guess in ("", "x" * 33, "guessed-id", None):
        with pytest.raises(NotFound):
            get_downloadable(world["alice"], guess)


# --- X-Accel-Redirect ---------------------------------------------------------------------------------


@pytest.fixture
def accel(app, monkeypatch):
    """This app hands file bytes to the front server (what ACCEL_REDIRECT_PREFIX sets at start-up)."""
    monkeypatch.setitem(app.config["NBPRESS"], "ACCEL_REDIRECT_PREFIX", PREFIX)
    return PREFIX


def test_without_the_setting_the_portal_sends_the_bytes_itself(client, login, world):
    login(client, "alice@example.org")
    publication, data = world["weekly"][0]
    response = client.get(f"/p/{publication.public_id}/download")
    assert response.status_code == 200 and response.get_data() == data
    assert "X-Accel-Redirect" not in response.headers


def test_with_the_setting_the_front_server_gets_the_stored_path_after_checks_and_audit(app, client, login, world, accel):
    login(client, "alice@example.org")
    publication, _ = world["weekly"][2]
    response = client.get(f"/p/{publication.public_id}/download")
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["X-Accel-Redirect"] == f"{PREFIX}/{publication.sha256[:2]}/{publication.sha256}.pdf"
    assert (FileStore(app.config["FILES_DIR"]).root / response.headers["X-Accel-Redirect"].removeprefix(PREFIX + "/")).is_file()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=weekly_statistics-v3-2026-W47.pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"] == f'"{publication.sha256}"'
    assert [e.detail["publication"] for e in _downloads("ok")] == [publication.public_id]

    view = client.get(f"/p/{publication.public_id}/view")
    assert view.headers["Content-Disposition"] == "inline; filename=weekly_statistics-v3-2026-W47.pdf"
    assert "sandbox" in view.headers["Content-Security-Policy"] and view.headers["X-Accel-Redirect"] == response.headers["X-Accel-Redirect"]

    # The client's ETag answers 304 here: nothing for the front server to send (still audited).
    again = client.get(f"/p/{publication.public_id}/download", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and "X-Accel-Redirect" not in again.headers
    assert len(_downloads("ok")) == 3


def test_the_accel_path_cannot_be_steered_by_the_request(client, login, world, accel):
    login(client, "alice@example.org")
    publication, _ = world["weekly"][0]
    expected = f"{PREFIX}/{publication.sha256[:2]}/{publication.sha256}.pdf"
    attempts = [
        ("", {"X-Accel-Redirect": "/_nbpress_files/../../etc/passwd"}),
        ("?path=../../etc/passwd&file=x.pdf", {}),
        ("", {"X-Forwarded-Prefix": "/evil", "X-Forwarded-Host": "evil.example", "Range": "bytes=0-9"}),
        ("?sha256=" + "0" * 64, {"If-None-Match": '"other"'}),
    ]
    for query, headers in attempts:
        response = client.get(f"/p/{publication.public_id}/download{query}", headers=headers)
        assert response.status_code == 200, (query, headers)
        assert response.headers["X-Accel-Redirect"] == expected
        assert re.fullmatch(re.escape(PREFIX) + r"/[0-9a-f]{2}/[0-9a-f]{64}\.pdf", response.headers["X-Accel-Redirect"])


def test_ungranted_unknown_and_signed_out_get_no_accel_header(client, login, world, accel):
    finance, _ = world["finance"]
    signed_out = client.get(f"/p/{finance.public_id}/download")
    assert signed_out.status_code in (302, 303) and "X-Accel-Redirect" not in signed_out.headers
    login(client, "alice@example.org")
    for public_id in (finance.public_id, world["hidden"].public_id, "AAAAAAAAAAAAAAAAAAAAAA", "not.an.id"):
        for action in ("download", "view"):
            response = client.get(f"/p/{public_id}/{action}")
            assert response.status_code == 404, public_id
            assert "X-Accel-Redirect" not in response.headers
            assert finance.sha256 not in response.get_data(as_text=True)
    assert not _downloads("ok") and len(_downloads("refused")) == 8


def test_the_api_download_uses_the_front_server_too(client, make_user, api_token, world, accel):
    token = api_token(client, "alice@example.org")
    publication, _ = world["weekly"][0]
    response = client.get(f"/api/v1/publications/{publication.public_id}/download", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["X-Accel-Redirect"] == f"{PREFIX}/{publication.sha256[:2]}/{publication.sha256}.pdf"
    assert response.headers["Cache-Control"] == "no-store"
    finance, _ = world["finance"]
    refused = client.get(f"/api/v1/publications/{finance.public_id}/download", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused.headers
    assert [e.detail["via"] for e in _downloads("ok")] == ["api"]


@pytest.mark.parametrize("value", ["_nbpress_files", "/", "/a/../b", "/..", "/a b", "//evil.example/x", "/files?x=1", "/x\r\nSet-Cookie: a=b"])
def test_a_bad_accel_prefix_stops_start_up(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        create_app(base_config(ACCEL_REDIRECT_PREFIX=value), instance_path=tmp_path / "instance")
    assert "ACCEL_REDIRECT_PREFIX" in str(info.value) and "\n" not in str(info.value)


def test_the_accel_prefix_loses_a_trailing_slash(tmp_path):
    app = create_app(base_config(ACCEL_REDIRECT_PREFIX="/_nbpress_files/"), instance_path=tmp_path / "instance")
    assert app.config["NBPRESS"]["ACCEL_REDIRECT_PREFIX"] == "/_nbpress_files"


def test_only_server_databases_ping_pooled_connections(app, database_url):
    """A SQLite file connection cannot go stale; PostgreSQL ones can (restarts, idle timeouts)."""
    assert db.engine.pool._pre_ping is bool(database_url)


def test_the_file_answer_keeps_head_conditional_and_range(client, login, world):
    """The lean file answer (pages._sent_file) in place of send_file: HEAD, 304, 206 and 416 as before."""
    login(client, "alice@example.org")
    publication, data = world["weekly"][1]
    url = f"/p/{publication.public_id}/download"
    first = client.get(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    first.close()
    for _ in range(2):
        head = client.head(url)
        assert head.status_code == 200 and head.get_data() == b"" and head.headers["Content-Length"] == str(len(data))
        assert head.headers["Accept-Ranges"] == "bytes" and head.headers["ETag"] == etag
        head.close()
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        part = client.get(url, headers={"Range": "bytes=-6"})
        assert part.status_code == 206 and part.get_data() == data[-6:]
        assert part.headers["Content-Range"] == f"bytes {len(data) - 6}-{len(data) - 1}/{len(data)}"
        part.close()
        assert client.get(url, headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
