"""The security headers every answer carries, in one place for Flask's answers and the express downloads.

A content policy without inline script, no MIME sniffing, no referrer, no framing, an opener
policy, HSTS over HTTPS; ``no-store`` on everything but static files (pages and files are per user).
"""

from __future__ import annotations

from flask import request

__all__ = ["CSP", "PDF_VIEW_CSP", "defaults", "add_security_headers"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A PDF shown inline: the browser's own viewer renders it in a unique origin (sandbox), with no
# fetches of its own and no framing. Chromium and Firefox still render PDFs under this.
PDF_VIEW_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

_ALWAYS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
_HTTPS = _ALWAYS + (("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),)


def defaults(secure: bool) -> tuple[tuple[str, str], ...]:
    """The headers an answer gets unless it set its own (HSTS only over HTTPS)."""
    return _HTTPS if secure else _ALWAYS


def add_security_headers(response):
    """Flask's ``after_request`` hook."""
    headers = response.headers
    for name, value in defaults(request.is_secure):
        headers.setdefault(name, value)
    if not request.path.startswith("/static/"):  # pages and files are per-user: never cached
        headers["Cache-Control"] = "no-store"
    return response
