"""The portal keeps no Flask cookie session: none is read, none is written, writing fails loudly."""

from __future__ import annotations

import flask
import pytest
from flask.sessions import SecureCookieSessionInterface


def _signed_session_cookie(app, data: dict) -> str:
    # What Flask's default interface would accept: signed with the app's own SECRET_KEY.
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps(data)


def test_a_validly_signed_session_cookie_is_not_read(app):
    cookie = _signed_session_cookie(app, {"_user_id": "1"})
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        session = app.session_interface.open_session(app, flask.request)
        assert dict(session) == {} and session.get("_user_id") is None


def test_writing_to_the_session_is_refused(app):
    with app.test_request_context("/"):
        app.preprocess_request()
        with pytest.raises(RuntimeError, match="keeps no Flask session"):
            flask.session["anything"] = 1


def test_no_request_sets_a_session_cookie(client):
    for path in ("/login", "/", "/healthz"):
        answer = client.get(path)
        assert "session=" not in " ".join(answer.headers.getlist("Set-Cookie")), path
