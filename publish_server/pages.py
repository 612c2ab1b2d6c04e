"""Recipients' pages: report list, report history, downloads (blueprint ``pages``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__)
