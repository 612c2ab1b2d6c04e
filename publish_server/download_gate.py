"""A download's checks in one SELECT: does the token still count, and may its user read this?

Downloads are the portal's hottest request. Any other signed-in request asks the database twice:
the token's state (:mod:`signin.session_tokens`, loading the whole ``User``), then whatever its
view needs. A download asks once. One statement returns plain columns, no ORM object: the user's
state (id, active, role, must_change_password, tokens_valid_after), whether the token's jti is on
the deny-list and its device still trusted, and the publication's download columns when the grant
rule lets that user read it (NULLs otherwise: unknown, malformed and not granted look the same).

The rules are the shared ones, not copies: :func:`session_tokens.token_refused` judges the token,
:func:`access.readable_by` is the grant rule. :func:`statement`, :func:`params` and :func:`judge`
serve both paths a download can take: Flask's (:func:`check`, on the request's session) and the
express path in front of it (:mod:`express_downloads`, on a pooled DBAPI connection). The token itself is verified as on every other
request (flask-jwt-extended's extraction and CSRF rule, one verified decode, access tokens only);
only the deny-list callback and the user lookup are left to the query here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from flask import redirect, url_for
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from flask_jwt_extended.internal_utils import verify_token_type
from flask_jwt_extended.utils import decode_token
from flask_jwt_extended.view_decorators import _decode_jwt_from_cookies, _decode_jwt_from_headers
from jwt.exceptions import PyJWTError
from sqlalchemy import and_, bindparam, select

from .access import Downloadable, download_columns, readable_by
from .errors import Forbidden, HTTPError, PasswordChangeRequired, Unauthorized
from .extensions import db
from .models import Publication, Report, User
from .signin.session import page_redirect
from .signin.session_tokens import token_refused, token_state_columns, token_state_params

__all__ = ["Reader", "Checked", "statement", "params", "judge", "check", "page_download", "api_download"]

_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what models.new_public_id makes
_EXTRACT = {"cookies": lambda: _decode_jwt_from_cookies(False), "headers": _decode_jwt_from_headers}


@dataclass(frozen=True, slots=True)
class Reader:
    """The signed-in user of a download, as far as the download needs them."""

    id: int
    must_change_password: bool


@dataclass(frozen=True, slots=True)
class Checked:
    """A download whose token counts. ``publication`` is None when it does not exist for this
    reader (unknown id, malformed id or not granted: all 404)."""

    reader: Reader
    publication: Downloadable | None


@functools.cache
def statement():
    """The one SELECT (bound parameters ``sub``, ``jti``, ``did``, ``public_id``: :func:`params`).
    Built once per process (building and cache-keying a statement costs more CPU than running it).
    LEFT JOINs: the user's row comes back whether or not the publication is readable."""
    readable = and_(Publication.public_id == bindparam("public_id"), readable_by(User.id, User.role))
    return (
        select(User.id, User.active, User.tokens_valid_after, User.must_change_password, *token_state_columns(),
               *download_columns())
        .select_from(User)
        .outerjoin(Publication, readable)
        .outerjoin(Report, Report.id == Publication.report_id)
        .where(User.public_id == bindparam("sub"))
    )


def params(claims: dict, public_id: str) -> dict | None:
    """The bound values of :func:`statement` for a verified token and a requested id; None for a
    token that is not one of ours. A malformed id matches nothing (ids are never empty); the
    token's state is still answered."""
    values = token_state_params(claims)
    if values is not None:
        values["public_id"] = public_id if isinstance(public_id, str) and _PUBLIC_ID.fullmatch(public_id) else ""
    return values


def judge(claims: dict, row) -> Checked | None:
    """The :class:`Checked` download for the row :func:`statement` returned, or None when the
    token no longer counts (no such user, deny-listed, disabled, device revoked, issued too early)."""
    if row is None:  # the token names no user (deleted)
        return None
    user_id, active, valid_after, must_change, revoked, device_ok, *publication = row
    if token_refused(claims, active=active, tokens_valid_after=valid_after, revoked=revoked, device_ok=device_ok):
        return None
    found = Downloadable(*publication) if publication[0] is not None else None
    return Checked(Reader(user_id, bool(must_change)), found)


def _claims(location: str) -> dict:
    """The verified claims of the request's access token (raises flask-jwt-extended's and PyJWT's errors)."""
    encoded, csrf_value = _EXTRACT[location]()
    claims = decode_token(encoded, csrf_value)
    verify_token_type(claims, refresh=False)
    return claims


def check(public_id: str, *, location: str) -> Checked:
    """Verify the token found in ``location`` ("cookies" or "headers") and look up ``public_id``
    for its user, in one query on the request's session connection (its transaction: the audit
    row the caller adds commits with it). Raises :class:`Unauthorized` for a token that no
    longer counts, flask-jwt-extended's or PyJWT's errors for one that is missing or invalid.
    """
    claims = _claims(location)
    values = params(claims, public_id)
    if values is None:
        raise Unauthorized()
    # Core execution on the session's connection: its transaction, no ORM result machinery.
    checked = judge(claims, db.session.connection().execute(statement(), values).first())
    if checked is None:
        raise Unauthorized()
    return checked


def page_download(view: Callable) -> Callable:
    """:func:`signin.session.login_required_page` for the file views, with :func:`check` in place
    of its token check: the same redirects (refresh hop or sign-in form; the account page while a
    one-time password must be changed). The view is called with the id and the :class:`Checked`."""

    @functools.wraps(view)
    def wrapper(public_id: str):
        try:
            checked = check(public_id, location="cookies")
        except CSRFError:  # only unsafe methods carry one; the file views are GET and HEAD
            raise Forbidden("This form has expired. Reload the page and try again.") from None
        except (JWTExtendedException, PyJWTError, HTTPError):
            return page_redirect()
        if checked.reader.must_change_password:
            return redirect(url_for("auth.account", reason="change"))
        return view(public_id, checked)

    return wrapper


def api_download(view: Callable) -> Callable:
    """:func:`signin.session.api_user_required` for the API's file operation, with :func:`check`:
    401 for a missing, invalid or refused token, 403 password_change_required for a one-time password."""

    @functools.wraps(view)
    def wrapper(public_id: str):
        try:
            checked = check(public_id, location="headers")
        except (JWTExtendedException, PyJWTError):
            raise Unauthorized() from None
        if checked.reader.must_change_password:
            raise PasswordChangeRequired()
        return view(public_id, checked)

    return wrapper
