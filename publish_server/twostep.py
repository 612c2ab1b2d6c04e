"""The second sign-in step: device check after the password, then the emailed code.

:func:`after_password_web` / :func:`after_password_api` run once :func:`signin.authenticate`
accepted the password. A trusted device (see :mod:`devices`) gets tokens at once; anything else
gets a login challenge (see :mod:`challenges`) and an answer that says only that a code was
sent. Browsers are bound to their challenge by the ``login_challenge`` cookie (HttpOnly,
SameSite=Strict, Path=/, ``__Host-`` prefixed when cookies are Secure, like every cookie: see
:mod:`session`; it holds ``<challenge id>.<binding secret>``), and the verify
and resend forms repeat the challenge id in a hidden field (a double submit no other site can
forge). API clients get ``challenge_id`` and ``client_secret`` and send both back. Nothing but
verify and resend accepts that partial state. On a correct code the device becomes trusted
(browsers: a device cookie; API clients: a ``device_token``), tokens are issued and a "new
sign-in" notice is emailed.

IP and MAC come from ``request.remote_addr`` (corrected by ProxyFix for ``TRUSTED_PROXIES``
only) and the kernel's neighbour table: never from headers or the body.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from pydantic import BaseModel, Field, StrictStr

from . import audit, challenges, devices
from .errors import CodeProblem
from .extensions import db, limiter
from .mail import MailError, send_template
from .models import Device, User
from .neighbours import MacReading, read_mac
from .openapi import ErrorOut, operation, parse_body
from .session import PASSWORD_CHANGE_REQUIRED_NOTE, cookie_args, cookie_name, safe_next

__all__ = ["bp", "api_bp", "after_password_web", "after_password_api", "device_cookie_name", "client_ip", "client_mac"]

log = logging.getLogger(__name__)

bp = Blueprint("twostep", __name__)
api_bp = Blueprint("twostep_api", __name__, url_prefix="/api/v1/auth")

CHALLENGE_COOKIE = "login_challenge"  # the cookie is cookie_name(CHALLENGE_COOKIE)
CODE_SENT = "We sent a sign-in code to your email address."
STEP_RATE = "30 per minute"  # per client IP, failed verify/resend only (each challenge also has its own caps)


def _failed_only(response) -> bool:
    return response.status_code >= 400


def device_cookie_name() -> str:
    return cookie_name("nbpress_device")


def client_ip() -> str:
    return request.remote_addr or ""


def client_mac(ip: str) -> MacReading:
    """The MAC of ``ip`` from the kernel's neighbour table (when the check is on)."""
    return _mac(ip)


def _mac(ip: str) -> MacReading:
    if not current_app.config["NBPRESS"]["DEVICE_MAC_CHECK"]:
        return MacReading(None, "unknown: MAC check off")
    return read_mac(ip)


def _user_agent() -> str:
    return request.headers.get("User-Agent", "")[:300]


def _start(user: User, verdict: devices.Verdict, client: str, ip: str, mac: MacReading) -> challenges.Started:
    return challenges.start(user, device=verdict.device, reason=verdict.reason or "new_device", client=client,
                            ip=ip, mac=mac, user_agent=_user_agent())


def _notify(user: User, device: Device, ip: str) -> None:
    """The "new sign-in" email: time, IP, device; a failure is logged, the sign-in stands."""
    try:
        send_template("new_signin", to_name=user.display_name, to_address=user.email,
                      subject="New sign-in to your Notebook Press account", name=user.display_name or user.email,
                      when=device.last_seen_at.strftime("%Y-%m-%d %H:%M"), ip=ip or "unknown", device=device.name)
    except MailError as exc:
        log.error("new sign-in notice for user %s not sent: %s", user.id, exc)


def _finish(challenge, user: User) -> tuple[Device, str]:
    ip = client_ip()
    mac = _mac(ip)
    device = db.session.get(Device, challenge.device_id) if challenge.device_id else None
    device, secret = devices.trust(user, device, client=challenge.client, ip=ip, mac=mac,
                                   user_agent=_user_agent(), now=challenges.now())
    audit.record("device.trust", "ok", user_id=user.id, device=device.public_id, reason=challenge.reason,
                 mac_status=mac.status)
    _notify(user, device, ip)
    return device, secret


# --- browsers --------------------------------------------------------------------------------


def _cookie_args() -> dict:
    return cookie_args()  # Path=/ and Secure for the __Host- prefix


def after_password_web(user: User, next_url: str, render_login):
    """The response to a correct password from the sign-in form."""
    from .auth import start_browser_session

    ip = client_ip()
    mac = _mac(ip)
    verdict = devices.check(user, request.cookies.get(device_cookie_name()), ip, mac, challenges.now())
    if verdict.trusted:
        audit.record("login.device", "trusted", user_id=user.id, device=verdict.device.public_id)
        target = url_for("auth.account", reason="change") if user.must_change_password else safe_next(next_url)
        return start_browser_session(redirect(target, code=303), user, verdict.device)
    try:
        started = _start(user, verdict, "web", ip, mac)
    except CodeProblem as problem:
        return render_login(status=problem.status, error=problem.message, email=user.email, next_url=next_url)
    response = redirect(url_for("twostep.verify_form", next=safe_next(next_url, default="") or None), code=303)
    response.set_cookie(cookie_name(CHALLENGE_COOKIE), f"{started.challenge.public_id}.{started.binding}",
                        max_age=current_app.config["NBPRESS"]["CODE_MINUTES"] * 60, **_cookie_args())
    return response


def _browser_challenge():
    """The challenge named by this browser's cookie, when the form repeats its id."""
    raw = request.cookies.get(cookie_name(CHALLENGE_COOKIE), "")
    challenge_id, _, binding = raw.partition(".")
    if request.method == "POST" and request.form.get("challenge", "") != challenge_id:
        raise challenges._ended()
    return challenges.find(challenge_id, binding)


def _render_verify(*, status: int = 200, error: str = "", notice: str = "", ended: bool = False):
    raw = request.cookies.get(cookie_name(CHALLENGE_COOKIE), "")
    body = render_template("verify.html", error=error, notice=notice, ended=ended, challenge=raw.partition(".")[0],
                           next=safe_next(request.values.get("next", ""), default=""),
                           digits=current_app.config["NBPRESS"]["CODE_DIGITS"])
    response = make_response(body, status)
    if ended:
        response.delete_cookie(cookie_name(CHALLENGE_COOKIE), **_cookie_args())
    return response


@bp.get("/login/verify")
def verify_form():
    try:
        _browser_challenge()
    except CodeProblem as problem:
        return _render_verify(status=problem.status, error=problem.message, ended=True)
    return _render_verify(notice="A new code is on its way." if request.args.get("sent") else CODE_SENT)


@bp.post("/login/verify")
@limiter.limit(STEP_RATE, deduct_when=_failed_only)
def verify_submit():
    from .auth import start_browser_session

    try:
        challenge = _browser_challenge()
        user = challenges.verify(challenge, challenges.parse_code(request.form.get("code", "").strip()))
    except CodeProblem as problem:
        db.session.commit()  # attempts and audit rows count whatever the outcome
        ended = problem.code == "challenge_ended"
        return _render_verify(status=problem.status, error=problem.message, ended=ended)
    device, secret = _finish(challenge, user)
    next_url = request.form.get("next", "")
    target = url_for("auth.account", reason="change") if user.must_change_password else safe_next(next_url)
    response = start_browser_session(redirect(target, code=303), user, device)
    response.set_cookie(device_cookie_name(), secret, max_age=current_app.config["NBPRESS"]["DEVICE_DAYS"] * 86400,
                        **_cookie_args())
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE), **_cookie_args())
    db.session.commit()
    return response


@bp.post("/login/resend")
@limiter.limit(STEP_RATE, deduct_when=_failed_only)
def resend_submit():
    try:
        challenges.resend(_browser_challenge())
    except CodeProblem as problem:
        db.session.commit()
        return _render_verify(status=problem.status, error=problem.message, ended=problem.code == "challenge_ended")
    db.session.commit()
    return redirect(url_for("twostep.verify_form", sent=1, next=safe_next(request.form.get("next", ""), default="") or None), code=303)


# --- API clients -------------------------------------------------------------------------------


class ChallengeOut(BaseModel):
    challenge_id: str
    client_secret: str = Field(description="Send back with the code; binds the challenge to this client")
    expires_in: int = Field(description="Seconds until the code expires")
    message: str = CODE_SENT


class VerifyIn(BaseModel):
    challenge_id: StrictStr = Field(min_length=1, max_length=64)
    client_secret: StrictStr = Field(min_length=1, max_length=100)
    code: StrictStr = Field(min_length=1, max_length=32)


class ResendIn(BaseModel):
    challenge_id: StrictStr = Field(min_length=1, max_length=64)
    client_secret: StrictStr = Field(min_length=1, max_length=100)


class VerifiedOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    device_token: str = Field(description="Send as device_token when signing in again to skip the code (30 days)")
    password_change_required: bool = Field(default=False, description=PASSWORD_CHANGE_REQUIRED_NOTE)


class SentOut(BaseModel):
    message: str


def after_password_api(user: User, device_token: str | None):
    """The answer to a correct password from ``POST /api/v1/auth/login``."""
    from .auth import tokens_json
    from . import tokens

    ip = client_ip()
    mac = _mac(ip)
    verdict = devices.check(user, device_token, ip, mac, challenges.now())
    if verdict.trusted:
        audit.record("login.device", "trusted", user_id=user.id, device=verdict.device.public_id, client="api")
        pair = tokens.issue_pair(user, device_id=verdict.device.public_id)
        return jsonify(tokens_json(pair))
    started = _start(user, verdict, "api", ip, mac)  # CodeProblem -> JSON error
    seconds = current_app.config["NBPRESS"]["CODE_MINUTES"] * 60
    body = ChallengeOut(challenge_id=started.challenge.public_id, client_secret=started.binding, expires_in=seconds)
    return jsonify(body.model_dump()), 202


@api_bp.post("/verify")
@operation("Finish a sign-in with the emailed code", body=VerifyIn, tags=("auth",),
           responses={200: VerifiedOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut})
@limiter.limit(STEP_RATE, deduct_when=_failed_only)
def api_verify():
    from . import tokens

    body = parse_body(VerifyIn)
    try:
        challenge = challenges.find(body.challenge_id, body.client_secret)
        user = challenges.verify(challenge, challenges.parse_code(body.code))
    except CodeProblem:
        db.session.commit()
        raise
    device, secret = _finish(challenge, user)
    pair = tokens.issue_pair(user, device_id=device.public_id)
    db.session.commit()
    return jsonify(VerifiedOut(access_token=pair.access, refresh_token=pair.refresh, expires_in=pair.expires_in,
                               device_token=secret, password_change_required=pair.password_change_required).model_dump())


@api_bp.post("/resend")
@operation("Email a new code for a pending sign-in (the previous code stops working)", body=ResendIn, tags=("auth",),
           responses={202: SentOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut, 503: ErrorOut})
@limiter.limit(STEP_RATE, deduct_when=_failed_only)
def api_resend():
    body = parse_body(ResendIn)
    try:
        challenges.resend(challenges.find(body.challenge_id, body.client_secret))
    except CodeProblem:
        db.session.commit()
        raise
    db.session.commit()
    return jsonify(SentOut(message="We sent a new code.").model_dump()), 202
