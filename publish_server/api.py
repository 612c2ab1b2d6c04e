"""The JSON API under /api/v1: publishing, listing, downloading (blueprint ``api``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")
