"""Sign-in, sign-out, token refresh and the account page (blueprint ``auth``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)
api_bp = Blueprint("auth_api", __name__, url_prefix="/api/v1/auth")
