"""Who is asking: the signed-in user of a page (JWT cookies) or of an API call (Bearer header).

Pages redirect to the sign-in form when nobody is signed in; the API answers 401. The API
reads tokens from the Authorization header only, so cookies never authorise it (no CSRF). A
one-time password (``must_change_password``) opens only the account page, where it is changed;
on the API it opens only ``POST /api/v1/auth/password`` and sign-out (403
``password_change_required`` elsewhere).

Cookies. Every cookie is SameSite=Strict with Path=/ and, when ``COOKIE_SECURE`` is on, Secure
with a ``__Host-`` name (:func:`cookie_name`): browsers refuse such a cookie with a Domain, a
narrower Path or without Secure, so a sibling sub-domain or a plain-HTTP page can neither plant
nor overwrite one (no session fixation, no forged double-submit value). Hence Path=/ for the
refresh cookie too (in both modes, one behaviour): it travels with every request, but only the
``/auth/refresh`` views read it; every other view verifies the access cookie alone.

Keeping a page session alive (the refresh design). When a page finds no usable access cookie,
:func:`login_required_page` looks for the non-HttpOnly ``csrf_refresh_token`` cookie (set and
cleared together with the HttpOnly refresh cookie): when present it redirects to
``GET /auth/refresh?next=<this page>``, which rotates the refresh token, sets fresh cookies and
redirects back; otherwise straight to the sign-in form. That hop is a GET that changes only the
caller's own tokens; it needs the SameSite=Strict refresh cookie, which browsers never send on
cross-site requests, so no other site can trigger it. A POST whose access token expired cannot
be replayed through the hop, so it returns to the page named by the form's hidden ``next`` field
(the user submits again).

Forms posted with cookie authentication carry the access token's CSRF value in a hidden
``csrf_token`` field (flask-jwt-extended double submit, ``JWT_CSRF_CHECK_FORM``); templates get
it from the ``csrf_field()`` / ``csrf_token()`` globals (registered by :mod:`views.password`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from flask import current_app, g, redirect, request, url_for
from flask_jwt_extended import get_csrf_token, get_current_user, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from jwt.exceptions import PyJWTError
from markupsafe import Markup, escape

from ..errors import Forbidden, HTTPError, PasswordChangeRequired, Unauthorized
from ..models import User

__all__ = ["page_user", "login_required_page", "api_user_required", "page_redirect", "safe_next", "csrf_token", "csrf_field", "remember_csrf",
           "cookie_name", "cookie_args", "PASSWORD_CHANGE_REQUIRED_NOTE"]

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def page_user() -> User | None:
    """The user signed in with browser cookies, or None (expired, revoked, absent)."""
    try:
        verify_jwt_in_request(optional=True, locations=["cookies"])
    except (JWTExtendedException, PyJWTError, HTTPError):
        return None
    user = get_current_user()
    return user if user is not None and user.active else None


def page_redirect():
    """Where a page goes without a usable access token: the refresh hop or the sign-in form."""
    if request.method in _SAFE_METHODS:
        target = safe_next(request.full_path.rstrip("?"))
    else:
        target = safe_next(request.form.get("next"))
    if request.cookies.get(current_app.config["JWT_REFRESH_CSRF_COOKIE_NAME"]):
        return redirect(url_for("auth.refresh_page", next=target), code=303)
    return redirect(url_for("auth.login_form", next=target), code=303)


def login_required_page(view: Callable) -> Callable:
    """A page for signed-in users; a POST without the CSRF value is refused (403), state unchanged."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            verify_jwt_in_request(locations=["cookies"])
        except CSRFError:
            raise Forbidden("This form has expired. Reload the page and try again.") from None
        except (JWTExtendedException, PyJWTError, HTTPError):
            return page_redirect()
        user = get_current_user()
        if user is None or not user.active:
            return page_redirect()
        if user.must_change_password and request.endpoint not in _WHILE_PASSWORD_MUST_CHANGE:
            # A one-time password opens the account page only, until it is replaced.
            return redirect(url_for("auth.account", reason="change"))
        return view(*args, **kwargs)

    return wrapper


_WHILE_PASSWORD_MUST_CHANGE = {"auth.account", "auth.change_password", "auth.logout", "auth.logout_confirm"}


def api_user_required(view: Callable) -> Callable:
    """An API operation for a signed-in user (access token in the Authorization header)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            verify_jwt_in_request(locations=["headers"])
        except (JWTExtendedException, PyJWTError):
            raise Unauthorized() from None
        user = get_current_user()
        if user is None or not user.active:
            raise Unauthorized()
        if user.must_change_password and request.endpoint not in _API_WHILE_PASSWORD_MUST_CHANGE:
            # The sign-in completed (the device is verified), but a one-time password reads nothing.
            raise PasswordChangeRequired()
        return view(*args, **kwargs)

    return wrapper


# Sign-out (auth_api.api_logout) checks its token itself and stays open too; refresh refuses.
_API_WHILE_PASSWORD_MUST_CHANGE = {"auth_api.api_change_password", "auth_api.api_logout"}

# How token answers describe their password_change_required field (OpenAPI).
PASSWORD_CHANGE_REQUIRED_NOTE = (
    "True for a one-time password: until POST /api/v1/auth/password replaces it, every other operation "
    "but sign-out answers 403 password_change_required"
)


def cookie_name(name: str, *, secure: bool | None = None) -> str:
    """``name`` as the portal sets it: ``__Host-`` prefixed when cookies are Secure (``COOKIE_SECURE``)."""
    if secure is None:
        secure = current_app.config["NBPRESS"]["COOKIE_SECURE"]
    return f"__Host-{name}" if secure else name


def cookie_args() -> dict:
    """How the portal's own cookies are set and cleared (the JWT cookies follow the same rules)."""
    return {"path": "/", "httponly": True, "samesite": "Strict", "secure": current_app.config["NBPRESS"]["COOKIE_SECURE"]}


def remember_csrf(encoded_access_token: str) -> None:
    """Forms rendered in this response must carry the CSRF value of the cookie being set now."""
    g.nbpress_csrf = get_csrf_token(encoded_access_token)


def csrf_token() -> str:
    """The CSRF double-submit value of this browser's access token ("" when not signed in)."""
    fresh = g.get("nbpress_csrf")
    if fresh:
        return fresh
    try:
        return str(get_jwt().get("csrf", ""))
    except RuntimeError:  # no token was verified in this request
        return ""


def csrf_field() -> Markup:
    """The hidden form field every cookie-authenticated POST form carries."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(csrf_token()))


def _has_unsafe_chars(text: str) -> bool:
    return any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after sign-in; anything that could leave the site is refused.

    Checked raw and percent-decoded (repeatedly): ``/%5Cevil.com`` or ``/%2F%2Fevil.com`` are
    turned into ``\\`` and ``//`` by some servers and proxies, so they are refused too.
    """
    if not target or not isinstance(target, str) or len(target) > 2048:
        return default
    cleaned = target.strip()
    decoded = cleaned
    for _ in range(4):
        if _has_unsafe_chars(decoded) or not decoded.startswith("/") or decoded.startswith("//"):
            return default
        parts = urlsplit(decoded)
        if parts.scheme or parts.netloc:
            return default
        step = unquote(decoded)
        if step == decoded:
            return cleaned
        decoded = step
    return default  # still changing after several rounds of decoding: not an honest path
