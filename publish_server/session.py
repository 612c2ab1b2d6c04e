"""Who is asking: the signed-in user of a page (JWT cookies) or of an API call (Bearer header).

Pages redirect to the sign-in form when nobody is signed in; the API answers 401. The API
reads tokens from the Authorization header only, so cookies never authorise it (no CSRF).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import redirect, request, url_for
from flask_jwt_extended import get_current_user, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from .errors import HTTPError, Unauthorized
from .models import User

__all__ = ["page_user", "login_required_page", "api_user_required", "safe_next"]


def page_user() -> User | None:
    """The user signed in with browser cookies, or None (expired, revoked, absent)."""
    try:
        verify_jwt_in_request(optional=True, locations=["cookies"])
    except (JWTExtendedException, PyJWTError, HTTPError):
        return None
    user = get_current_user()
    return user if user is not None and user.active else None


def login_required_page(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if page_user() is None:
            return redirect(url_for("auth.login_form", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def api_user_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            verify_jwt_in_request(locations=["headers"])
        except (JWTExtendedException, PyJWTError):
            raise Unauthorized() from None
        user = get_current_user()
        if user is None or not user.active:
            raise Unauthorized()
        return view(*args, **kwargs)

    return wrapper


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after sign-in; anything that could leave the site is refused."""
    if not target or not isinstance(target, str):
        return default
    cleaned = target.strip()
    if any(ch in cleaned for ch in "\\\r\n\t\x00") or not cleaned.startswith("/") or cleaned.startswith("//"):
        return default
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return default
    return cleaned
