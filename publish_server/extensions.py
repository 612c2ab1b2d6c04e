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
    # request.remote_addr is already corrected by ProxyFix for the configured proxies only.
    return request.remote_addr or "unknown"


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
# fixed-window: its counters can be given back (failure_limits refunds a success's slot).
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True, strategy="fixed-window")


def failed_only(response) -> bool:
    """``deduct_when`` for sign-in limits: only failed attempts count, so working users are never throttled."""
    return response.status_code >= 400
