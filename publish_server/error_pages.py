"""One error handler for the whole portal: JSON for the API, an HTML page for browsers.

Messages are the public ones declared on each error class; nothing from the exception's
internals (paths, SQL, stack) reaches the client.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from .errors import HTTPError, StorageUnavailable
from .extensions import db

log = logging.getLogger(__name__)


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _respond(status: int, code: str, message: str, headers=None):
    if wants_json():
        response = jsonify(error=code, message=message)
    else:
        response = make_response(render_template("error.html", status=status, message=message), status)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def database_unavailable(exc: OperationalError) -> bool:
    """Is this the database being away (worth a retry), rather than a bug in a query?"""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if type(orig).__module__.startswith("psycopg"):
        # class 08: connection exception; 57P: shutdown, restart; none: could not connect at all
        return not sqlstate or sqlstate.startswith(("08", "57P"))
    message = str(orig)
    return type(orig).__module__ == "sqlite3" and ("unable to open database file" in message or "database is locked" in message)


def respond(exc: HTTPError, headers=None):
    """The answer to ``exc``, for handlers of other exceptions that answer with a portal error."""
    return _respond(exc.status, exc.code, exc.message, headers)


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPError)
    def _portal_error(exc: HTTPError):
        # The object store failing is as transient as the database going away: say when to retry.
        return respond(exc, {"Retry-After": "5"} if isinstance(exc, StorageUnavailable) else None)

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException):
        status = exc.code or 500
        known = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                 429: "too_many_requests"}
        message = {404: "There is nothing here.", 429: "Too many attempts. Please wait and try again.",
                   413: "The upload is too large."}.get(status, exc.description if status < 500 else "Something went wrong on our side.")
        headers = {"Retry-After": exc.retry_after} if getattr(exc, "retry_after", None) else None
        if status == 429 and headers is None:
            headers = {"Retry-After": "60"}
        return _respond(status, known.get(status, "error"), message, headers)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        if not database_unavailable(exc):
            return _unexpected(exc)  # SQLite reports bad SQL as an OperationalError too: that is our bug, a 500
        # The database went away (restart, failover, network): a transient state the client may retry.
        # The pool drops the broken connections and pool_pre_ping checks the next ones, so no restart is needed.
        log.error("database unavailable on %s %r: %s", request.method, request.path, type(exc.orig).__name__)
        return _respond(503, "unavailable", "The portal is briefly unavailable. Please try again in a moment.",
                        {"Retry-After": "5"})

    @app.teardown_appcontext
    def _release_connection(_exc) -> None:
        # Runs before Flask-SQLAlchemy's own teardown (registered earlier; teardowns run in reverse).
        # If the database went away after the answer was made, ending the transaction fails; caught
        # here, SQLAlchemy drops that connection, and the answer goes out instead of a server's 500.
        if not db.session.registry.has():  # this context opened no session (express downloads)
            return
        try:
            db.session.rollback()
        except OperationalError as exc:
            log.error("database connection lost while ending a request: %s", type(exc.orig).__name__)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # %r: the path is the client's text; quoted, a line break in it cannot start a forged log line.
        log.exception("unhandled error on %s %r", request.method, request.path)
        return _respond(500, "internal_error", "Something went wrong on our side.")
