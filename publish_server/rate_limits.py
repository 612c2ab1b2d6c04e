"""Per-IP rate limits (Flask-Limiter): their settings, how failures are counted, and failing closed.

Each limit is a setting (``RATELIMIT_*_PER_IP``, see :data:`LIMIT_SETTINGS`) read per request.

Limits that count *failed* requests only (a working user is never throttled) take a slot before
the view runs and give it back when the answer is under 400, or 503 (the portal could not try:
its database or mail server was away, which is not the client's failure). Flask-Limiter's own ``deduct_when``
tests first and counts after the answer, so 50 requests arriving at once all pass the test:
taking the slot first is atomic in the storage (one INCR in Redis), so exactly the limit get
through however many processes serve. That needs the fixed-window strategy (a count to give back).

With a shared storage (Redis) that cannot be reached, a limited endpoint answers 503 ("Sign-in is
unavailable for a moment") and the log gets one line per outage and process: never unlimited
(Flask-Limiter's ``swallow_errors`` and its in-memory fallback stay off) and never a 500. The
portal starts without Redis, serving everything that is not limited, so the order in which
services come up does not matter; a malformed storage URL or a missing ``redis`` package stops
start-up with one line.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import threading
from typing import Any, Callable
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from limits import parse_many

from . import error_pages
from .errors import ConfigError, LimitsUnavailable
from .extensions import client_ip, limiter

__all__ = ["LIMIT_SETTINGS", "check_limit_setting", "check_storage_url", "masked_url", "per_ip", "failures_per_ip",
           "per_key", "unlimited", "flask_config", "init_app"]

log = logging.getLogger(__name__)

# The settings that hold a limit string (validated by check_limit_setting; docs in settings.py).
LIMIT_SETTINGS = ("RATELIMIT_SIGNIN_PER_IP", "RATELIMIT_CODE_PER_IP", "RATELIMIT_RESET_ASK_PER_IP",
                  "RATELIMIT_RESET_ASK_PER_ADDRESS", "RATELIMIT_RESET_SET_PER_IP", "RATELIMIT_WITHDRAW_PER_IP")

_REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
_FAILURES = "failures:"  # the key prefix of limits that count failed requests only
_SIGN_IN_BLUEPRINTS = {"auth", "auth_api", "twostep", "twostep_api", "reset"}
# redis-py's own defaults wait 5 s (recent clients) or forever (older ones): a Redis host gone silent must not hold sign-in.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


def check_limit_setting(name: str, value: str) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``value`` is a Flask-Limiter limit string."""
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if not items:
        raise ConfigError(f"setting {name}: expected a rate limit such as '10 per minute' or '5/minute;100/hour', got {value!r}")
    if any(item.amount < 1 for item in items):
        raise ConfigError(f"setting {name}: a limit of 0 refuses every request; use at least 1 (got {value!r})")


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _is_redis(url: str) -> bool:
    return url.split("://", 1)[0].lower() in _REDIS_SCHEMES


def check_storage_url(url: str) -> None:
    """memory:// or a redis URL whose client is installed; else one line naming the setting (never the URL's password)."""
    if url.startswith("memory://"):
        return
    if not _is_redis(url):
        raise ConfigError(f"setting RATELIMIT_STORAGE_URL: expected memory:// or redis://HOST:PORT/DB, got {masked_url(url)!r}")
    if importlib.util.find_spec("redis") is None:
        raise ConfigError("setting RATELIMIT_STORAGE_URL: a redis:// storage needs the redis package: "
                          "pip install 'nbpress[scale]'")


def flask_config(url: str) -> dict[str, Any]:
    """Flask-Limiter's configuration for the storage at ``url`` (fails closed; see the module doc)."""
    return {
        "RATELIMIT_STORAGE_URI": url,
        "RATELIMIT_STORAGE_OPTIONS": dict(_REDIS_TIMEOUTS) if _is_redis(url) else {},
        "RATELIMIT_STRATEGY": "fixed-window",  # failures_per_ip gives a slot back: a count, not a moving log
        "RATELIMIT_SWALLOW_ERRORS": False,  # Flask-Limiter's default too; True would let every request through
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": False,  # a per-process fallback would multiply the limits
    }


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config["NBPRESS"][name]


def per_ip(setting: str):
    """Every request counts against ``setting`` per client IP."""
    return limiter.limit(_setting(setting))


def per_key(setting: str, key_func: Callable[[], str]):
    """Every request counts against ``setting`` per ``key_func()``."""
    return limiter.limit(_setting(setting), key_func=key_func)


def failures_per_ip(setting: str):
    """Failed requests (answers of 400 and more, but 503) count against ``setting`` per client IP."""
    return limiter.limit(_setting(setting), key_func=lambda: _FAILURES + client_ip())


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What a storage raises when it cannot answer: limits' wrapper (newer limits) and redis-py's errors.

    Looked up by name: redis is an optional extra, and older limits have no StorageError."""
    found = []
    for module, name in (("limits.errors", "StorageError"), ("redis.exceptions", "RedisError")):
        if importlib.util.find_spec(module.partition(".")[0]) is not None:
            error = getattr(importlib.import_module(module), name, None)
            if error is not None:
                found.append(error)
    return tuple(found)


class _Outage:
    """Whether this process last found the storage away: one log line when it goes, one when it is back."""

    def __init__(self, url: str):
        self.url = masked_url(url)
        self.down = False
        self.lock = threading.Lock()

    def went(self, exc: BaseException | None, when: str) -> None:
        with self.lock:
            if self.down:
                return
            self.down = True
        cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        log.error("rate-limit storage %s unreachable %s%s: limited endpoints (sign-in, codes, password reset, withdrawals) "
                  "answer 503 until it is back", self.url, when, cause)

    def back(self) -> None:
        with self.lock:
            if not self.down:
                return
            self.down = False
        log.warning("rate-limit storage %s reachable again: limited endpoints serve", self.url)


_UNLIMITED: set[Callable] = set()


def unlimited(view: Callable) -> Callable:
    """A view no limit applies to (downloads; put it right under the route): exempt from every
    limit, and the limiter's per-request resolution, which costs a download about as much CPU as
    its SQL (~0.1 ms), is not run for it at all."""
    _UNLIMITED.add(view)
    return limiter.exempt(view)


def _skip_unlimited_views(app: Flask) -> None:
    hooks = app.before_request_funcs.setdefault(None, [])
    for index, hook in enumerate(hooks):
        if getattr(hook, "__self__", None) is limiter and hook.__name__ == "_check_request_limit":
            def check_limited(hook=hook):
                if app.view_functions.get(request.endpoint) not in _UNLIMITED:
                    return hook()
                return None

            hooks[index] = check_limited


def init_app(app: Flask) -> None:
    """After ``limiter.init_app``: give back failures' slots, answer 503 when the storage is away."""
    _skip_unlimited_views(app)
    url = app.config["NBPRESS"]["RATELIMIT_STORAGE_URL"]
    outage = _Outage(url)
    errors = _storage_errors()

    def storage_unreachable(exc: BaseException):
        outage.went(exc, "while serving")
        message = None if request.blueprint in _SIGN_IN_BLUEPRINTS else "This is unavailable for a moment; try again shortly."
        return error_pages.respond(LimitsUnavailable(message), {"Retry-After": "5"})  # HTML or JSON

    for error in errors:
        app.register_error_handler(error, storage_unreachable)

    @app.after_request
    def give_back_and_note(response):
        counted = limiter.current_limits
        if counted:
            outage.back()  # the limits of this request were read: the storage answers
        if 400 <= response.status_code != 503:  # a 503 evaluated nothing: it costs the client no try
            return response
        for limit in counted:
            if not limit.breached and any(str(arg).startswith(_FAILURES) for arg in limit.request_args):
                try:
                    limiter.limiter.storage.incr(limit.key, limit.limit.get_expiry(), amount=-1)
                except errors as exc:  # the answer stands; the slot stays taken until the window ends
                    outage.went(exc, "while giving back a slot")
        return response

    _guard_header_hook(app, errors, outage)
    if _is_redis(url) and not limiter.limiter.storage.check():
        outage.went(None, "at start-up")


def _guard_header_hook(app: Flask, errors: tuple[type[BaseException], ...], outage: _Outage) -> None:
    """Flask-Limiter reads the storage again after the view, for its X-RateLimit headers: a storage
    gone in between would turn the view's answer into a 500. That answer goes out without them."""
    hooks = app.after_request_funcs.setdefault(None, [])
    for index, hook in enumerate(hooks):
        if isinstance(hook, functools.partial) and hook.args == (limiter,):
            def guarded(response, hook=hook):
                try:
                    return hook(response)
                except errors as exc:
                    outage.went(exc, "while adding rate-limit headers")
                    return response

            hooks[index] = guarded
