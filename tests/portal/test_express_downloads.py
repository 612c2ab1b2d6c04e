"""The express downloads (publish_server.express_downloads): the same answer as Flask's path, or none.

Every download test in tests/portal goes through the middleware already (the test client calls
the app's whole WSGI stack), so the rules of tests/portal/test_download_rules.py hold on it. Here:
the express answer is byte for byte and header for header Flask's answer for the same download,
with the same audit row; what it leaves to Flask it leaves untouched (nothing answered, nothing
written); a remembered token still expires; one app's verified tokens are not another's.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from werkzeug.test import EnvironBuilder

from publish_server import create_app
from publish_server.express_downloads import ExpressDownloads
from publish_server.extensions import db
from publish_server.models import AuditEvent, Publication, User, utcnow
from tests.portal.conftest import base_config
from tests.portal.test_pages import publish, world  # noqa: F401  (fixtures)

PREFIX = "/_nbpress_files"


def express_of(app) -> ExpressDownloads:
    layer = app.wsgi_app
    while not isinstance(layer, ExpressDownloads):
        layer = layer.app  # ProxyFix, when configured
    return layer


def call(wsgi, path: str, headers: dict[str, str], method: str = "GET", **environ) -> tuple[str, list, bytes]:
    """(status, headers, body) of one WSGI call."""
    answer: list = []
    env = EnvironBuilder(path=path, method=method, headers=headers, environ_overrides=environ).get_environ()
    body = wsgi(env, lambda status, headers, exc_info=None: answer.extend((status, headers)))
    assert body is not None, f"{path}: not answered"
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return answer[0], answer[1], data


def comparable(headers: list) -> list:
    """The headers, order aside, with the value of Date (the moment of the answer) left out."""
    return sorted((name.lower(), "" if name == "Date" else value) for name, value in headers)


def audit_rows() -> list[tuple]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "download").order_by(AuditEvent.id))
    return [(e.outcome, e.user_id, e.ip, e.detail) for e in rows]


def requests(client, login, api_token, public_id: str) -> list[tuple[str, dict]]:
    login(client, "alice@example.org")
    cookie = f"access_token_cookie={client.get_cookie('access_token_cookie').value}"
    bearer = f"Bearer {api_token(client, 'alice@example.org')}"
    return [(f"/p/{public_id}/download", {"Cookie": cookie}), (f"/p/{public_id}/view", {"Cookie": cookie}),
            (f"/api/v1/publications/{public_id}/download", {"Authorization": bearer})]


@pytest.mark.parametrize("accel", [False, True], ids=["file", "accel"])
def test_the_express_answer_is_flasks_answer(app, client, login, api_token, world, monkeypatch, accel):
    if accel:
        monkeypatch.setitem(app.config["NBPRESS"], "ACCEL_REDIRECT_PREFIX", PREFIX)
    publication, data = world["weekly"][1]
    express = express_of(app)
    for path, headers in requests(client, login, api_token, publication.public_id):
        before = len(audit_rows())
        fast = call(express.answer, path, headers)  # fails unless the express path answers
        flask = call(express.wsgi_app, path, headers)  # the Flask app alone
        assert fast[0] == flask[0] == "200 OK"
        assert comparable(fast[1]) == comparable(flask[1]), path
        assert fast[2] == flask[2] == (b"" if accel else data)
        rows = audit_rows()[before:]
        assert len(rows) == 2 and rows[0] == rows[1] and rows[0][0] == "ok", rows


def test_the_https_answer_carries_hsts_both_ways(app, client, login, api_token, world):
    publication, _ = world["weekly"][0]
    path, headers = requests(client, login, api_token, publication.public_id)[0]
    express = express_of(app)
    fast = call(express.answer, path, headers, **{"wsgi.url_scheme": "https"})
    flask = call(express.wsgi_app, path, headers, **{"wsgi.url_scheme": "https"})
    assert ("strict-transport-security", "max-age=31536000; includeSubDomains") in comparable(fast[1])
    assert comparable(fast[1]) == comparable(flask[1])


def _leaves_to_flask(app, path: str, headers: dict, method: str = "GET", **environ) -> None:
    before = audit_rows()
    env = EnvironBuilder(path=path, method=method, headers=headers, environ_overrides=environ).get_environ()
    sent = []
    assert express_of(app).answer(env, lambda *args: sent.append(args)) is None
    assert sent == [] and audit_rows() == before  # nothing answered, nothing written


def test_what_is_not_a_plain_granted_download_is_left_to_flask(app, client, login, api_token, world, make_user):
    publication, _ = world["weekly"][0]
    download, view, api = requests(client, login, api_token, publication.public_id)
    cookie, bearer = download[1], api[1]
    assert express_of(app).answer(EnvironBuilder(path=download[0], headers=cookie).get_environ(), lambda *a: None) is not None

    for extra in ({"Range": "bytes=0-9"}, {"If-None-Match": f'"{publication.sha256}"'}, {"If-Range": "x"},
                  {"If-Modified-Since": "Mon, 09 Nov 2026 09:30:00 GMT"}):
        _leaves_to_flask(app, download[0], {**cookie, **extra})
    _leaves_to_flask(app, download[0], cookie, method="HEAD")
    _leaves_to_flask(app, download[0], {**cookie, "Host": "evil.example"})
    _leaves_to_flask(app, download[0] + "/", cookie)
    _leaves_to_flask(app, download[0], bearer)  # pages read the cookie only
    _leaves_to_flask(app, api[0], cookie)  # the API reads the header only
    _leaves_to_flask(app, api[0], {"Authorization": bearer["Authorization"].replace("Bearer", "bearer")})
    _leaves_to_flask(app, f"/p/{world['finance'][0].public_id}/download", cookie)  # not granted
    _leaves_to_flask(app, "/p/nonexistent/download", cookie)
    token = cookie["Cookie"].partition("=")[2]
    _leaves_to_flask(app, download[0], {"Cookie": f"access_token_cookie={token[:-2]}xx"})  # forged signature

    alice = db.session.scalar(sa.select(User).where(User.email == "alice@example.org"))
    refresh = create_refresh_token(identity=alice.public_id)
    _leaves_to_flask(app, download[0], {"Cookie": f"access_token_cookie={refresh}"})  # not an access token

    row = db.session.get(Publication, publication.id)
    row.withdrawn_at = utcnow()
    db.session.commit()
    _leaves_to_flask(app, download[0], cookie)  # withdrawn: Flask's 410
    row.withdrawn_at = None
    db.session.commit()

    alice.must_change_password = True
    db.session.commit()
    _leaves_to_flask(app, download[0], cookie)  # Flask sends the account page
    alice.must_change_password = False
    db.session.commit()

    (app.config["FILES_DIR"] / publication.sha256[:2] / f"{publication.sha256}.pdf").unlink()
    _leaves_to_flask(app, download[0], cookie)  # lost file: Flask's 404 and its log line


def test_a_remembered_token_still_expires(app, client, world):
    alice = world["alice"]
    publication, data = world["weekly"][0]
    token = create_access_token(identity=alice.public_id, expires_delta=dt.timedelta(seconds=2))
    client.set_cookie("access_token_cookie", token)
    answer = client.get(f"/p/{publication.public_id}/download")
    assert answer.status_code == 200 and answer.get_data() == data  # verified, and now remembered
    answer.close()
    time.sleep(max(0.0, decode_token(token)["exp"] - time.time()) + 0.05)
    env = EnvironBuilder(path=f"/p/{publication.public_id}/download", headers={"Cookie": f"access_token_cookie={token}"}).get_environ()
    assert express_of(app).answer(env, lambda *args: None) is None
    refused = client.get(f"/p/{publication.public_id}/download")
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login")


def test_one_apps_verified_tokens_are_not_anothers(app, tmp_path, database_url, world):
    """Two portals on one database with different JWT secrets: a token the first verified (and
    remembers) is still checked against the second one's secret."""
    alice = world["alice"]
    publication, _ = world["weekly"][0]
    token = create_access_token(identity=alice.public_id)
    path, headers = f"/p/{publication.public_id}/download", {"Cookie": f"access_token_cookie={token}"}
    assert call(app.wsgi_app, path, headers)[0] == "200 OK"
    other = create_app(base_config(DATABASE_URL=database_url or f"sqlite:///{app.instance_path}/portal.sqlite3",
                                   FILES_DIR=str(app.config["FILES_DIR"])), instance_path=tmp_path / "other")
    try:
        env = EnvironBuilder(path=path, headers=headers).get_environ()
        assert express_of(other).answer(env, lambda *args: None) is None
        assert call(other.wsgi_app, path, headers)[0] == "303 SEE OTHER"
    finally:
        with other.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_express_download_sends_two_statements_and_commits_its_row(app, client, login, world):
    """One SELECT (token state + grant + publication), one INSERT that commits itself (SQLite:
    the write lock is never held across Python code)."""
    login(client, "alice@example.org")
    url = f"/p/{world['weekly'][0][0].public_id}/download"
    db.session.commit()
    db.engine.dispose()  # new pooled connections, traced from their start
    sent: list[str] = []
    sa.event.listen(db.engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(sent.append))
    client.get(url).close()
    statements = [s for s in sent if not s.startswith("PRAGMA")]
    assert [s.split()[0] for s in statements] == ["SELECT", "INSERT"], statements
    assert not any(s.upper().startswith(("BEGIN", "COMMIT")) for s in statements)
    assert audit_rows()[-1][0] == "ok"
