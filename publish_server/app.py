"""The application factory. Nothing is built at import time; ``create_app`` binds everything."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from . import admin, api, error_pages, hosts, log_masking, pages, processes, rate_limits, sweep
from .errors import ConfigError
from .express_downloads import ExpressDownloads
from .extensions import db, jwt, limiter, migrate
from .hosts import parse_trusted_hosts
from .no_session import NoSessionInterface
from .s3_store import s3_store_from_settings
from .security_headers import add_security_headers
from .settings import SETTINGS, instance_folder, load_settings
from .notifications import views as notification_views
from .report_runs import user_api as run_user_api, views as run_views
from .report_runs import worker_api as run_worker_api
from .signin import session_tokens, views as signin_views
from .signin.session import cookie_name

__all__ = ["create_app"]

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(config: dict[str, Any] | None = None, *, instance_path: str | os.PathLike | None = None) -> Flask:
    """Build the portal. ``config`` overrides settings (by name) and plain Flask keys (tests)."""
    try:
        return _build(config, instance_path)
    except ConfigError as exc:
        for_gunicorn = processes.as_gunicorn_load_error(exc)  # one line in its log, not a traceback per worker
        if for_gunicorn is None:
            raise
        raise for_gunicorn from None


def _build(config: dict[str, Any] | None, instance_path: str | os.PathLike | None) -> Flask:
    instance = instance_folder(instance_path)
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds the database, files, dev secrets
    config = dict(config or {})
    declared = {s.name for s in SETTINGS}
    settings = load_settings(instance, {k: v for k, v in config.items() if k in declared})
    processes.check_rate_limit_storage(settings, processes.gunicorn_workers())
    app.config["NBPRESS"] = settings
    app.config.update(_flask_config(settings, instance))
    app.config.update({k: v for k, v in config.items() if k not in declared})
    if settings["FILES_URL"]:  # the object store; its client is made in each process on first use
        app.extensions["nbpress.objects"] = s3_store_from_settings(settings["FILES_URL"], settings, app.config["FILES_DIR"])


    app.session_interface = NoSessionInterface()  # no Flask cookie session (see no_session.py)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    jwt.init_app(app)
    limiter.init_app(app)
    rate_limits.init_app(app)  # after: it reads the limiter's storage

    session_tokens.init_app(app)
    error_pages.init_app(app)
    processes.init_app(app)
    hosts.init_app(app, parse_trusted_hosts(settings["TRUSTED_HOSTS"]))  # after: its check runs first of all
    for blueprint in signin_views.BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(notification_views.bp)
    app.register_blueprint(run_views.bp)
    app.register_blueprint(run_user_api.bp)
    app.register_blueprint(run_worker_api.bp)
    admin.init_app(app)
    app.after_request(add_security_headers)
    sweep.sweep_store(app)  # what a killed server left behind while publishing (see sweep.py)
    log_masking.install()  # reset links carry a token in their path
    app.wsgi_app = ExpressDownloads(app, app.wsgi_app)  # after every setting and extension it reads
    if settings["TRUSTED_PROXIES"]:  # outermost: every layer sees the client's address, scheme and host
        n = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return app


def _flask_config(settings: dict[str, Any], instance: Path) -> dict[str, Any]:
    database = settings["DATABASE_URL"] or f"sqlite:///{instance / 'portal.sqlite3'}"
    secure = settings["COOKIE_SECURE"]
    return {
        "SECRET_KEY": settings["SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": database,
        # Pre-ping guards against server connections dropped while pooled (PostgreSQL restarts,
        # idle timeouts). A SQLite file connection cannot go stale, and the ping is one more
        # statement, GIL release and re-acquire on every request (visible under threaded gunicorn).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": not database.startswith("sqlite")},
        "FILES_DIR": Path(settings["FILES_DIR"] or instance / "files"),
        # Werkzeug refuses bodies over this before a view runs (413); +1 MiB for the metadata part.
        "MAX_CONTENT_LENGTH": (settings["MAX_UPLOAD_MB"] + 1) * 1024 * 1024,
        **rate_limits.flask_config(settings["RATELIMIT_STORAGE_URL"]),
        # flask-jwt-extended: HS256 pinned, dedicated key, browser cookies with CSRF double submit.
        "JWT_SECRET_KEY": settings["JWT_SECRET"],
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers", "cookies"],
        "JWT_ACCESS_TOKEN_EXPIRES": dt.timedelta(minutes=settings["ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": dt.timedelta(hours=settings["SESSION_HOURS"]),
        "JWT_ENCODE_ISSUER": settings["JWT_ISSUER"],
        "JWT_DECODE_ISSUER": settings["JWT_ISSUER"],
        "JWT_ENCODE_AUDIENCE": settings["JWT_AUDIENCE"],
        "JWT_DECODE_AUDIENCE": settings["JWT_AUDIENCE"],
        "JWT_ENCODE_NBF": True,
        "JWT_COOKIE_SECURE": secure,
        # __Host- names when Secure (see signin.session.cookie_name), so Path=/ for all four cookies, in
        # both modes: one behaviour. Only /auth/refresh reads the refresh cookie.
        "JWT_ACCESS_COOKIE_NAME": cookie_name("access_token_cookie", secure=secure),
        "JWT_REFRESH_COOKIE_NAME": cookie_name("refresh_token_cookie", secure=secure),
        "JWT_ACCESS_CSRF_COOKIE_NAME": cookie_name("csrf_access_token", secure=secure),
        "JWT_REFRESH_CSRF_COOKIE_NAME": cookie_name("csrf_refresh_token", secure=secure),
        "JWT_ACCESS_COOKIE_PATH": "/",
        "JWT_REFRESH_COOKIE_PATH": "/",
        "JWT_ACCESS_CSRF_COOKIE_PATH": "/",
        "JWT_REFRESH_CSRF_COOKIE_PATH": "/",
        "JWT_COOKIE_SAMESITE": "Strict",
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_CSRF_IN_COOKIES": True,
        "JWT_CSRF_CHECK_FORM": True,  # server-rendered forms send the CSRF value as a hidden csrf_token field
        "JWT_SESSION_COOKIE": True,  # browser cookies end with the browser; the token's exp still rules
        "JWT_ERROR_MESSAGE_KEY": "error",
    }


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: write-ahead log (readers never block the writer), foreign keys, a busy wait."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL stays consistent after a crash (a power cut may lose the last
        # commits); FULL would fsync on every commit, which audited downloads make often.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
