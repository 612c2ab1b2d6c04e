"""Sign-in, sign-out, token refresh and the account page (blueprint ``auth``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)
