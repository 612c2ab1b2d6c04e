"""How many processes serve the portal, and what that means for settings kept per process.

Flask-Limiter's ``memory://`` storage counts in each process: with N gunicorn workers a client
gets N times the documented per-IP limits (each worker allows the full count), silently. So the
portal refuses to start that way unless ``RATELIMIT_PER_PROCESS`` says it is meant.

The worker count is gunicorn's own: gunicorn has no API for it, but it builds the app inside its
own call stack (a worker's ``load_wsgi`` -> ``app.wsgi()`` -> ``import_app`` -> ``create_app()``;
with ``--preload`` the arbiter's ``setup``), and each of those frames' ``self`` holds ``cfg``, the
:class:`gunicorn.config.Config` gunicorn resolved from its command line, ``GUNICORN_CMD_ARGS``,
its config file and ``WEB_CONCURRENCY``. Reading that object needs no second parse that could
disagree with gunicorn's. Other servers are covered by the per-request backstop in
:func:`init_app` (PEP 3333's ``wsgi.multiprocess``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask, request
from gunicorn.errors import AppImportError  # a small module of exception classes; gunicorn is a dependency

from .errors import ConfigError, ServiceUnavailable

__all__ = ["StartUpError", "gunicorn_workers", "check_rate_limit_storage", "as_gunicorn_load_error", "refuses_several_processes", "init_app"]

log = logging.getLogger(__name__)


def _gunicorn_config() -> Any | None:
    """The Config of the gunicorn that is loading this app, or None (no gunicorn on the stack)."""
    if "gunicorn.config" not in sys.modules:
        return None
    # Imported only once gunicorn has loaded it: at module level it would always be in sys.modules
    # (defeating the test above) and every portal process would load gunicorn's config machinery.
    from gunicorn.config import Config

    frame = sys._getframe(1)
    while frame is not None:
        cfg = getattr(frame.f_locals.get("self"), "cfg", None)
        if isinstance(cfg, Config):
            return cfg
        frame = frame.f_back
    return None


def gunicorn_workers() -> int | None:
    """gunicorn's configured worker processes when gunicorn is loading the app, else None."""
    cfg = _gunicorn_config()
    return cfg.workers if cfg is not None else None


def _per_process(settings: dict[str, Any]) -> bool:
    """Are rate limits counted in each process, without the operator having said that is fine?"""
    return settings["RATELIMIT_STORAGE_URL"].startswith("memory://") and not settings["RATELIMIT_PER_PROCESS"]


def check_rate_limit_storage(settings: dict[str, Any], workers: int | None) -> None:
    if workers is not None and workers > 1 and _per_process(settings):
        raise ConfigError(
            f"setting RATELIMIT_STORAGE_URL: memory:// counts rate limits in each process, and gunicorn runs {workers} worker "
            "processes (each would allow the full per-IP limits): use redis://... or set NBPRESS_RATELIMIT_PER_PROCESS=true")


class StartUpError(ConfigError, AppImportError):
    """A :class:`ConfigError` that a gunicorn worker reports as its "App failed to load": the
    message alone on stderr and exit status 4, which stops gunicorn (not a traceback per worker)."""


def as_gunicorn_load_error(exc: ConfigError) -> ConfigError | None:
    """``exc`` as a :class:`StartUpError` when gunicorn is loading the app, else None."""
    return StartUpError(str(exc)) if _gunicorn_config() is not None else None


def refuses_several_processes(app: Flask, environ: dict) -> bool:
    """Would :func:`init_app`'s backstop refuse this request?"""
    return bool(environ.get("wsgi.multiprocess")) and _per_process(app.config["NBPRESS"])


def init_app(app: Flask) -> None:
    """The backstop: a multi-process server not seen at start-up gets 503s, and one log line."""
    if not _per_process(app.config["NBPRESS"]):
        return
    said = []

    def refuse_several_processes() -> None:
        if refuses_several_processes(app, request.environ):
            if not said:
                said.append(True)
                log.error("refusing requests: several processes serve this app and rate limits are memory:// "
                          "(per process): set NBPRESS_RATELIMIT_STORAGE_URL=redis://... or NBPRESS_RATELIMIT_PER_PROCESS=true")
            raise ServiceUnavailable()

    app.before_request_funcs.setdefault(None, []).insert(0, refuse_several_processes)
