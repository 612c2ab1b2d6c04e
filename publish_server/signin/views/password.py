"""Sign-in, sign-out, token refresh and the account page (blueprints ``auth`` and ``auth_api``).

Thin views over :mod:`brake` and :mod:`password_step` (the password), :mod:`second_step` (device
or emailed code), :mod:`new_session` and :mod:`session_tokens` (sessions). Browsers get the
tokens as HttpOnly, SameSite=Strict cookies; cookie-authenticated POSTs carry the access token's
CSRF value (flask-jwt-extended double submit). The sign-in form, posted before any JWT exists,
has its own double submit: a random ``login_csrf`` value in a SameSite=Strict, HttpOnly cookie
and in a hidden field. Cookie names, paths and the ``__Host-`` prefix, and how a page session is
kept alive through ``GET /auth/refresh``, are described in :mod:`session`. Scripts use the JSON
endpoints under ``/api/v1/auth`` with the ``Authorization`` header and never cookies; a one-time
password gets tokens that can only change it (``POST /api/v1/auth/password``) or sign out.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from flask_jwt_extended import (
    decode_token, get_current_user, get_jwt, set_access_cookies, set_refresh_cookies,
    unset_jwt_cookies, verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from jwt.exceptions import PyJWTError
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ... import audit
from ...errors import BadRequest, Forbidden, HTTPError, PasswordChangeRequired, PasswordRejected, TooManyRequests, Unauthorized
from ...extensions import db
from ...openapi import ErrorOut, operation, parse_body
from ...rate_limits import failures_per_ip
from .. import brake, password_step, second_step, session_tokens
from ..new_session import TokensOut, start_browser_session, tokens_json
from ..session import api_user_required, cookie_args, cookie_name, csrf_field, csrf_token, login_required_page, safe_next

bp = Blueprint("auth", __name__)
api_bp = Blueprint("auth_api", __name__, url_prefix="/api/v1/auth")

LOGIN_FAILED = "Email or password is incorrect."
LOGIN_CSRF_COOKIE = "login_csrf"  # the form field; the cookie is cookie_name(LOGIN_CSRF_COOKIE)


# Jinja globals (not a context processor) so macros imported without context see them too.
bp.add_app_template_global(csrf_token, "csrf_token")
bp.add_app_template_global(csrf_field, "csrf_field")


# --- sign-in form -------------------------------------------------------------------------


_LOGIN_NOTICES = {"reset": "Your password has been changed and every device signed out. Sign in with the new password."}


def _render_login(*, status: int = 200, error: str = "", email: str = "", next_url: str = "", notice: str = ""):
    token = request.cookies.get(cookie_name(LOGIN_CSRF_COOKIE), "")
    if not (20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()):
        token = secrets.token_urlsafe(32)
    target = safe_next(next_url, default="")
    if target.split("?")[0] == url_for("auth.logout_confirm"):
        target = ""  # signed out already: signing in should not lead to "Sign out?"
    body = render_template("login.html", error=error, notice=notice, email=email, next=target, login_csrf=token)
    response = make_response(body, status)
    response.set_cookie(cookie_name(LOGIN_CSRF_COOKIE), token, **cookie_args())
    return response


@bp.get("/login")
def login_form():
    return _render_login(next_url=request.args.get("next", ""), notice=_LOGIN_NOTICES.get(request.args.get("done", ""), ""))


@bp.post("/login")
@failures_per_ip("RATELIMIT_SIGNIN_PER_IP")
def login_submit():
    email = request.form.get("email", "")
    next_url = request.form.get("next", "")
    cookie = request.cookies.get(cookie_name(LOGIN_CSRF_COOKIE), "")
    sent = request.form.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return _render_login(status=403, error="This form has expired. Please try again.", email=email, next_url=next_url)
    try:
        attempt = brake.admit(email, request.cookies.get(second_step.device_cookie_name()), ip=second_step.client_ip(),
                              read_mac=second_step.client_mac)
    except TooManyRequests as exc:
        db.session.commit()
        return _render_login(status=429, error=exc.message, email=email.strip()[:254], next_url=next_url)
    user = password_step.authenticate(email, request.form.get("password", ""))
    if user is not None:
        attempt.succeeded()
    db.session.commit()  # the audit row (and a rehash) are kept whatever the outcome
    if user is None:
        return _render_login(status=401, error=LOGIN_FAILED, email=email.strip()[:254], next_url=next_url)
    response = second_step.after_password_web(user, next_url, _render_login)
    if response.status_code == 303:
        response.delete_cookie(cookie_name(LOGIN_CSRF_COOKIE), **cookie_args())
    db.session.commit()
    return response


# --- sign-out and refresh (browser) -------------------------------------------------------


@bp.get("/logout")
@login_required_page
def logout_confirm():
    """Ask first: a stray tap on "Sign out" on a phone should not end the session."""
    return render_template("logout.html", user=get_current_user(), back=safe_next(request.args.get("back"), default="/"))


@bp.post("/logout")
def logout():
    """Revoke this browser's access and refresh tokens; an expired access token still counts."""
    encoded = request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"])
    if encoded:
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-TOKEN")
        if not sent:
            raise Forbidden("This form has expired. Reload the page and try again.")
        try:
            payload = decode_token(encoded, csrf_value=sent, allow_expired=True)
        except CSRFError:
            raise Forbidden("This form has expired. Reload the page and try again.") from None
        except (JWTExtendedException, PyJWTError):
            payload = None  # not ours or damaged: nothing to revoke, the cookies go anyway
        if payload is not None:
            session_tokens.revoke_pair(payload)
            user = session_tokens.user_for(payload)
            audit.record("logout", "ok", user_id=user.id if user else None)
            db.session.commit()
    response = redirect(url_for("auth.login_form"), code=303)
    unset_jwt_cookies(response)
    return response


def _rotate_from_cookie():
    """Verify the refresh cookie (CSRF on POST) and rotate; raises on any problem."""
    verify_jwt_in_request(refresh=True, locations=["cookies"])
    user = get_current_user()
    if user is None or not user.active:
        raise Unauthorized()
    return session_tokens.rotate(get_jwt(), user)


def _set_pair(response, pair):
    set_access_cookies(response, pair.access)
    set_refresh_cookies(response, pair.refresh)
    return response


@bp.get("/auth/refresh")
def refresh_page():
    """The hop pages take when their access token expired (see :mod:`session`)."""
    next_url = safe_next(request.args.get("next"))
    try:
        pair = _rotate_from_cookie()
    except (JWTExtendedException, PyJWTError, HTTPError):
        db.session.rollback()
        response = redirect(url_for("auth.login_form", next=next_url), code=303)
        unset_jwt_cookies(response)
        return response
    db.session.commit()
    return _set_pair(redirect(next_url, code=303), pair)


@bp.post("/auth/refresh")
def refresh_cookie():
    """Cookie refresh for scripts in the page (send the ``csrf_refresh_token`` value as X-CSRF-TOKEN)."""
    try:
        pair = _rotate_from_cookie()
    except CSRFError:
        raise Forbidden() from None
    except (JWTExtendedException, PyJWTError):
        raise Unauthorized() from None
    db.session.commit()
    return _set_pair(make_response("", 204), pair)


# --- account page -------------------------------------------------------------------------


@bp.get("/account")
@login_required_page
def account():
    notices = {"password": "Your password has been changed. Other devices and sessions have been signed out.",
               "change": "Please choose a new password before you continue.",
               "notifications": "Your notification choices are saved."}
    return render_template("account.html", user=get_current_user(), notice=notices.get(request.args.get("reason", "")),
                           error="", policy=_policy())


@bp.post("/account/password")
@login_required_page
def change_password():
    user = get_current_user()
    form = request.form
    try:
        password_step.change_password(user, form.get("current_password", ""), form.get("new_password", ""), form.get("new_password_again", ""))
    except PasswordRejected as exc:
        db.session.commit()  # the audit row only; the password is untouched
        body = render_template("account.html", user=user, notice=None, error=str(exc), policy=_policy())
        return make_response(body, 400)
    response = start_browser_session(redirect(url_for("auth.account", reason="password"), code=303), user)
    db.session.commit()
    return response


def _policy() -> dict:
    settings = current_app.config["NBPRESS"]
    return {"min": settings["PASSWORD_MIN_LENGTH"], "max": settings["PASSWORD_MAX_LENGTH"]}


# --- JSON API -----------------------------------------------------------------------------


class LoginIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ana@example.org", "password": "..."}]})
    email: StrictStr = Field(min_length=1, max_length=254)
    password: StrictStr = Field(min_length=1, max_length=4096)
    device_token: StrictStr | None = Field(default=None, max_length=100,
                                           description="From an earlier verify: skips the emailed code on a trusted device")


class PasswordIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"current_password": "...", "new_password": "..."}]})
    current_password: StrictStr = Field(min_length=1, max_length=4096)
    new_password: StrictStr = Field(min_length=1, max_length=4096,
                                    description="Must meet the password policy (length limits, not a common password)")


class LogoutIn(BaseModel):
    refresh_token: StrictStr | None = Field(default=None, max_length=8192)


@api_bp.post("/login")
@operation("Sign in with email and password: tokens on a trusted device, else 202 and an emailed code",
           body=LoginIn, tags=("auth",),
           responses={200: TokensOut, 202: second_step.ChallengeOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut, 503: ErrorOut})
@failures_per_ip("RATELIMIT_SIGNIN_PER_IP")
def api_login():
    body = parse_body(LoginIn)
    # Commit the refusal's audit row only on a refusal: committing while a database error is
    # raised would hide it behind another one (a 500 instead of the 503 "try again").
    try:
        attempt = brake.admit(body.email, body.device_token, ip=second_step.client_ip(), read_mac=second_step.client_mac)
    except TooManyRequests:
        db.session.commit()
        raise
    user = password_step.authenticate(body.email, body.password)
    if user is not None:
        attempt.succeeded()
    db.session.commit()
    if user is None:
        raise Unauthorized(LOGIN_FAILED, code="invalid_credentials")
    try:
        answer = second_step.after_password_api(user, body.device_token)  # tokens, or 202 and an emailed code
    except HTTPError:
        db.session.commit()  # a failed send leaves its audit row and nothing else
        raise
    db.session.commit()
    return answer


@api_bp.post("/refresh")
@operation("Trade a refresh token for new tokens (the old refresh token stops working)", tags=("auth",),
           security="bearer", responses={200: TokensOut, 401: ErrorOut, 403: ErrorOut})
def api_refresh():
    try:
        verify_jwt_in_request(refresh=True, locations=["headers"])
    except (JWTExtendedException, PyJWTError):
        raise Unauthorized() from None
    user = get_current_user()
    if user is None or not user.active:
        raise Unauthorized()
    if user.must_change_password:
        raise PasswordChangeRequired()  # a one-time password's session is not kept alive either
    pair = session_tokens.rotate(get_jwt(), user)
    db.session.commit()
    return jsonify(tokens_json(pair))


@api_bp.post("/logout")
@operation("Revoke this access token and its refresh token", body=LogoutIn, tags=("auth",),
           security="bearer", responses={204: None, 400: ErrorOut, 401: ErrorOut})
@api_user_required
def api_logout():
    user = get_current_user()
    body = parse_body(LogoutIn) if request.content_length else LogoutIn()
    if body.refresh_token:
        try:
            refresh = decode_token(body.refresh_token, allow_expired=True)
        except (JWTExtendedException, PyJWTError):
            raise BadRequest("refresh_token: not a valid token") from None
        if refresh.get("type") != "refresh" or refresh.get("sub") != user.public_id:
            raise BadRequest("refresh_token: not a refresh token of this user")
        session_tokens.revoke(refresh)
    session_tokens.revoke_pair(get_jwt())
    audit.record("logout", "ok", user_id=user.id, client="api")
    db.session.commit()
    return "", 204


@api_bp.post("/password")
@operation("Change your password (a one-time password must be changed before anything else): "
           "earlier tokens of every device end, new tokens are answered",
           body=PasswordIn, tags=("auth",), security="bearer",
           responses={200: TokensOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut, 503: ErrorOut})
@api_user_required  # outermost, so requests without a valid token never count against the limit
@failures_per_ip("RATELIMIT_SIGNIN_PER_IP")  # each try verifies the current password (Argon2)
def api_change_password():
    user = get_current_user()
    body = parse_body(PasswordIn)
    try:
        password_step.change_password(user, body.current_password, body.new_password, body.new_password, client="api")
    except PasswordRejected:
        db.session.commit()  # the audit row only; the password is untouched
        raise  # 400 password_rejected with the reason as its message
    pair = session_tokens.issue_pair(user)  # as on the account page: every device needs a code again
    db.session.commit()
    return jsonify(tokens_json(pair))
