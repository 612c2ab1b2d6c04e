"""Downloads that pass every check, answered before Flask's request machinery runs.

A download is the portal's hottest request, and under gunicorn most of its CPU went to the
layers around the checks (request context, URL routing, hooks, the response object, SQLAlchemy's
execution machinery, PyJWT's parsing), not to the checks. This WSGI middleware answers the plain
success case itself, under the same rules:

* only ``GET /p/<id>/download``, ``GET /p/<id>/view`` (the access cookie) and
  ``GET /api/v1/publications/<id>/download`` (a ``Bearer`` header), for a trusted host, with no
  range or conditional header;
* the token verified by flask-jwt-extended's ``decode_token`` (access tokens only). A token
  that verified is remembered per process (its text is the key, so a changed byte is a new
  token); only its expiry can change its verdict later, and that is checked on every request;
* its state (deny-list, user, device) and the grant rule read by :mod:`download_gate`'s one
  SELECT and judged by :func:`download_gate.judge`, as on Flask's path;
* the audit row stored before the first byte goes out, then the same headers and the same open
  file in the server's ``wsgi.file_wrapper`` (or the same ``X-Accel-Redirect``).

Anything else goes to Flask untouched, which checks everything again and answers as usual: a
refusal of any kind (with its audit row), a redirect, 404/410, a missing file, a HEAD, a range or
conditional request, object storage, a database error. Nothing is written unless the file is
answered here, so no request is audited twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import sqlite3
import time
from types import MappingProxyType

from flask import Flask
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_jwt_extended.internal_utils import verify_token_type
from flask_jwt_extended.utils import decode_token
from jwt.exceptions import PyJWTError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import http_date, parse_cookie
from werkzeug.wsgi import wrap_file

from . import audit, download_gate
from .access import Downloadable
from .compiled_sql import CompiledStatement
from .extensions import db
from .hosts import host_of, trusted_hosts
from .pages import download_name
from .processes import refuses_several_processes
from .security_headers import PDF_VIEW_CSP, defaults
from .storage import FileStore, relative_path, store_for

__all__ = ["ExpressDownloads"]

_ROUTE = re.compile(r"/p/([A-Za-z0-9_-]{1,32})/(download|view)|/api/v1/publications/([A-Za-z0-9_-]{1,32})/download")
_JWT = r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
# Headers that make the answer something other than the whole file (304, 206, 412, 416): Flask's.
_CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE",
                "HTTP_IF_UNMODIFIED_SINCE")
_STATE_AND_GRANT = CompiledStatement(download_gate.statement())
_AUDIT_ROW = CompiledStatement(audit.INSERT, column_keys=list(audit.COLUMNS))
VERIFIED_TOKENS = 4096  # per process; a verified token is ~1 KiB


class ExpressDownloads:
    """WSGI middleware in front of Flask's ``wsgi_app``: see the module's docstring."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self.cookie = app.config["JWT_ACCESS_COOKIE_NAME"]
        self.header = "HTTP_" + app.config["JWT_HEADER_NAME"].upper().replace("-", "_")
        self.bearer = re.compile(rf"{re.escape(app.config['JWT_HEADER_TYPE'])} ({_JWT})")
        self.verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(_verified_claims)  # per app: its own secret

    def __call__(self, environ, start_response):
        answer = self.answer(environ, start_response)
        return self.wsgi_app(environ, start_response) if answer is None else answer

    def answer(self, environ, start_response):
        """The file's answer when this request is a plain download that passes every check; None
        (nothing written, nothing sent) for Flask to handle."""
        route = _ROUTE.fullmatch(environ.get("PATH_INFO", "")) if environ["REQUEST_METHOD"] == "GET" else None
        if route is None or any(name in environ for name in _CONDITIONAL):
            return None
        if host_of(environ) not in trusted_hosts(self.app) or refuses_several_processes(self.app, environ):
            return None
        page_id, kind, api_id = route.groups()
        token = self._cookie_token(environ) if page_id else self._bearer_token(environ)
        if token is None:
            return None
        with self.app.app_context():
            claims = self._claims(token)
            values = None if claims is None else download_gate.params(claims, page_id or api_id)
            store = store_for(self.app)
            if values is None or not isinstance(store, FileStore):  # object storage: its redirects are Flask's
                return None
            via = {"via": "api"} if kind is None else {"via": "page", "mode": "inline" if kind == "view" else "attachment"}
            found = self._checked_and_audited(claims, values, store, environ.get("REMOTE_ADDR"), via)
            if found is None:
                return None
            publication, file = found
            return self._file_answer(environ, start_response, publication, file, inline=kind == "view")

    def _cookie_token(self, environ) -> str | None:
        token = parse_cookie(environ).get(self.cookie)  # as Flask's request.cookies reads it
        return token if token and re.fullmatch(_JWT, token) else None

    def _bearer_token(self, environ) -> str | None:
        found = self.bearer.fullmatch(environ.get(self.header, ""))
        return found.group(1) if found else None

    def _claims(self, token: str):
        try:
            claims = self.verified(token)
        except (JWTExtendedException, PyJWTError):
            return None
        expires, leeway = claims.get("exp"), jwt_config.leeway
        leeway = leeway.total_seconds() if isinstance(leeway, dt.timedelta) else leeway
        if not isinstance(expires, (int, float)) or expires <= time.time() - leeway:
            return None  # expired since it was verified (PyJWT's rule): Flask's path refuses it
        return claims

    def _checked_and_audited(self, claims, values: dict, store: FileStore, ip: str | None, via: dict):
        """(publication, open file or None with X-Accel-Redirect) once the download is allowed and
        its audit row stored; None when anything is not plainly fine, nothing written then."""
        engine = db.engine
        try:
            connection = engine.raw_connection()  # the pool's (pragmas set on connect); back to it on close
        except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error):  # the database is away: Flask answers 503
            return None
        file = None
        try:
            cursor = connection.cursor()
            checked = download_gate.judge(claims, _STATE_AND_GRANT.first(cursor, engine.dialect, values))
            if checked is None or checked.reader.must_change_password or checked.publication is None:
                return None
            publication = checked.publication
            path = store.locate(publication.sha256) if publication.withdrawn_at is None else None
            if path is None:
                return None  # withdrawn (410) or lost (404, and logged): Flask answers and audits it
            if not self.app.config["NBPRESS"]["ACCEL_REDIRECT_PREFIX"]:
                file = open(path, "rb")
            row = audit.values("download", "ok", user_id=checked.reader.id, ip=ip, **via, publication=publication.public_id)
            _store_audit_row(connection, cursor, engine.dialect, row)
            return publication, file
        except OSError:
            return None  # the file went between locate and open: Flask answers 404 and logs it
        except engine.dialect.loaded_dbapi.Error:
            if file is not None:
                file.close()
            connection.invalidate()  # maybe broken: the pool opens a fresh one; Flask answers (503 if it is down)
            return None
        finally:
            connection.close()

    def _file_answer(self, environ, start_response, publication: Downloadable, file, *, inline: bool):
        # The headers pages.file_response and the after_request hooks give the same download.
        headers = [("Content-Type", "application/pdf")]
        if file is None:
            prefix = self.app.config["NBPRESS"]["ACCEL_REDIRECT_PREFIX"]
            headers.append(("X-Accel-Redirect", f"{prefix}/{relative_path(publication.sha256)}"))
        else:
            headers.append(("Content-Length", str(os.fstat(file.fileno()).st_size)))
        headers += [
            ("Content-Disposition", f"{'inline' if inline else 'attachment'}; filename={download_name(publication)}"),
            ("ETag", f'"{publication.sha256}"'),
            ("Last-Modified", http_date(publication.created_at)),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
        ]
        if file is not None:
            headers += [("Date", http_date()), ("Accept-Ranges", "bytes")]
        if inline:
            headers.append(("Content-Security-Policy", PDF_VIEW_CSP))
        named = {name for name, _ in headers}
        headers += [(name, value) for name, value in defaults(environ["wsgi.url_scheme"] == "https") if name not in named]
        if file is None:
            headers.append(("Content-Length", "0"))
        start_response("200 OK", headers)
        return [] if file is None else wrap_file(environ, file)


def _verified_claims(token: str) -> MappingProxyType:
    claims = decode_token(token)  # a GET carries no CSRF value: flask-jwt-extended checks unsafe methods only
    verify_token_type(claims, refresh=False)
    return MappingProxyType(claims)


def _store_audit_row(connection, cursor, dialect, row: dict) -> None:
    driver = connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        _AUDIT_ROW.execute(cursor, dialect, row)
        connection.commit()
        return
    # SQLite: the INSERT commits by itself, so the database's one write lock is taken and released
    # inside one call, never held while this thread waits for the GIL to commit.
    previous = driver.isolation_level
    driver.isolation_level = None
    try:
        _AUDIT_ROW.execute(cursor, dialect, row)
    finally:
        driver.isolation_level = previous
