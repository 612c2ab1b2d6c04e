"""Self-service password reset (blueprint ``reset``): "Forgot password?" and the emailed link.

Thin views over :mod:`password_reset`. Both forms are posted before any sign-in, so each has a
double submit like the sign-in form (a random value in a SameSite=Strict, HttpOnly cookie and a
hidden field). Asking for a link always answers the same page with the same status; the mail
goes out after the response (``call_on_close``), so the time to answer is the same too. Asking
is limited per client IP and per submitted address (Flask-Limiter; the address is hashed in
the key). The link's token is in the URL path of one GET: :mod:`log_masking` hides it in the
access logs, the page carries it on in a hidden field, and ``Referrer-Policy: no-referrer``
keeps it from other sites.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for

from ...errors import PasswordRejected
from ...extensions import db
from ...mail import portal_link
from ...rate_limits import failures_per_ip, per_ip, per_key
from .. import password_reset
from ..password_step import normalise_email
from ..second_step import client_ip
from ..session import cookie_args, cookie_name

bp = Blueprint("reset", __name__, url_prefix="/password")

FORM_COOKIE = "reset_csrf"  # the form field; the cookie is cookie_name(FORM_COOKIE)
SENT = ("If an account uses that address, we have sent it a link to choose a new password. "
        f"The link works once, for {password_reset.RESET_MINUTES} minutes.")
LINK_ENDED = "This link has expired or was already used. Ask for a new one below."


def _email_key() -> str:
    address = normalise_email(request.form.get("email", ""))
    return "reset-email:" + hashlib.sha256(address.encode()).hexdigest()  # no address in the limiter's storage


def _render(template: str, *, status: int = 200, **context):
    token = request.cookies.get(cookie_name(FORM_COOKIE), "")
    if not (20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()):
        token = secrets.token_urlsafe(32)
    response = make_response(render_template(template, form_csrf=token, minutes=password_reset.RESET_MINUTES,
                                             policy=_policy(), **context), status)
    response.set_cookie(cookie_name(FORM_COOKIE), token, **cookie_args())
    return response


def _form_is_ours() -> bool:
    cookie = request.cookies.get(cookie_name(FORM_COOKIE), "")
    sent = request.form.get(FORM_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def _policy() -> dict:
    settings = current_app.config["NBPRESS"]
    return {"min": settings["PASSWORD_MIN_LENGTH"], "max": settings["PASSWORD_MAX_LENGTH"]}


@bp.get("/forgot")
def forgot_form():
    return _render("forgot.html")


@bp.post("/forgot")
@per_ip("RATELIMIT_RESET_ASK_PER_IP")
@per_key("RATELIMIT_RESET_ASK_PER_ADDRESS", _email_key)
def forgot_submit():
    if not _form_is_ours():
        return _render("forgot.html", status=403, error="This form has expired. Please try again.")
    outgoing = password_reset.request_link(
        request.form.get("email", ""), ip=client_ip(),
        link_for=lambda token: portal_link("reset.reset_form", token=token))
    db.session.commit()
    response = _render("forgot.html", sent=SENT)
    response.call_on_close(outgoing.send)  # after the answer has gone: its timing tells nothing
    return response


@bp.get("/reset/<token>")
def reset_form(token: str):
    if password_reset.find(token) is None:
        return _render("forgot.html", status=410, error=LINK_ENDED)
    return _render("reset.html", token=token)


@bp.post("/reset")
@failures_per_ip("RATELIMIT_RESET_SET_PER_IP")
def reset_submit():
    token = request.form.get("token", "")
    if not _form_is_ours():
        return _render("reset.html", status=403, token=token if password_reset.token_shape(token) else "",
                       error="This form has expired. Please try again.")
    try:
        user = password_reset.complete(token, request.form.get("new_password", ""), request.form.get("new_password_again", ""))
    except PasswordRejected as exc:
        db.session.commit()  # the audit row; the link still works
        return _render("reset.html", status=400, token=token, error=str(exc))
    db.session.commit()
    if user is None:
        return _render("forgot.html", status=410, error=LINK_ENDED)
    response = redirect(url_for("auth.login_form", done="reset"), code=303)
    response.delete_cookie(cookie_name(FORM_COOKIE), **cookie_args())
    return response
