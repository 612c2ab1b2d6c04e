"""Flask extensions, created here unbound and bound to the app in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


def client_ip() -> str:
    """The limiter's key: request.remote_addr, already corrected by ProxyFix for the configured proxies only."""
    return request.remote_addr or "unknown"


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
# Fails closed, explicitly: no swallowed storage errors, no per-process fallback (see rate_limits.py).
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True, swallow_errors=False,
                  in_memory_fallback_enabled=False)
