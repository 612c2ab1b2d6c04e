"""The emailed-code views: the code form and resend for browsers (blueprint ``twostep``),
``/api/v1/auth/verify`` and ``/resend`` for API clients (blueprint ``twostep_api``).

Thin views over :mod:`second_step` (which starts a challenge after the password) and
:mod:`code_challenges`. A correct code trusts the device (:func:`second_step.finish`) and
starts the session (:mod:`new_session`); every failed try is committed, so its attempt and
audit row count whatever the outcome.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from pydantic import BaseModel, Field, StrictStr

from ...errors import CodeProblem
from ...extensions import db
from ...models import User
from ...openapi import ErrorOut, operation, parse_body
from ...rate_limits import failures_per_ip
from .. import code_challenges, session_tokens
from ..new_session import start_browser_session
from ..second_step import CHALLENGE_COOKIE, CODE_SENT, device_cookie_name, finish
from ..session import PASSWORD_CHANGE_REQUIRED_NOTE, cookie_args, cookie_name, safe_next

__all__ = ["bp", "api_bp"]

bp = Blueprint("twostep", __name__)
api_bp = Blueprint("twostep_api", __name__, url_prefix="/api/v1/auth")


# --- browsers --------------------------------------------------------------------------------


def _browser_challenge():
    """The challenge named by this browser's cookie, when the form repeats its id."""
    raw = request.cookies.get(cookie_name(CHALLENGE_COOKIE), "")
    challenge_id, _, binding = raw.partition(".")
    if request.method == "POST" and request.form.get("challenge", "") != challenge_id:
        raise code_challenges.ended()
    return code_challenges.find(challenge_id, binding)


def _render_verify(*, status: int = 200, error: str = "", notice: str = "", ended: bool = False, challenge=None):
    raw = request.cookies.get(cookie_name(CHALLENGE_COOKIE), "")
    user = db.session.get(User, challenge.user_id) if challenge is not None and not ended else None
    body = render_template("verify.html", error=error, notice=notice, ended=ended, challenge=raw.partition(".")[0],
                           address=code_challenges.masked_address(user.email) if user is not None else "",
                           expires=challenge.expires_at.strftime("%H:%M") if challenge is not None else "",
                           minutes=current_app.config["NBPRESS"]["CODE_MINUTES"],
                           next=safe_next(request.values.get("next", ""), default=""),
                           digits=current_app.config["NBPRESS"]["CODE_DIGITS"])
    response = make_response(body, status)
    if ended:
        response.delete_cookie(cookie_name(CHALLENGE_COOKIE), **cookie_args())
    return response


@bp.get("/login/verify")
def verify_form():
    try:
        challenge = _browser_challenge()
    except CodeProblem as problem:
        return _render_verify(status=problem.status, error=problem.message, ended=True)
    return _render_verify(notice="A new code is on its way." if request.args.get("sent") else CODE_SENT, challenge=challenge)


@bp.post("/login/verify")
@failures_per_ip("RATELIMIT_CODE_PER_IP")  # each challenge also has its own caps
def verify_submit():
    challenge = None
    try:
        challenge = _browser_challenge()
        user = code_challenges.verify(challenge, code_challenges.parse_code(request.form.get("code", "").strip()))
    except CodeProblem as problem:
        db.session.commit()  # attempts and audit rows count whatever the outcome
        ended = problem.code == "challenge_ended"
        return _render_verify(status=problem.status, error=problem.message, ended=ended, challenge=challenge)
    device, secret = finish(challenge, user)
    next_url = request.form.get("next", "")
    target = url_for("auth.account", reason="change") if user.must_change_password else safe_next(next_url)
    response = start_browser_session(redirect(target, code=303), user, device)
    response.set_cookie(device_cookie_name(), secret, max_age=current_app.config["NBPRESS"]["DEVICE_DAYS"] * 86400,
                        **cookie_args())
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE), **cookie_args())
    db.session.commit()
    return response


@bp.post("/login/resend")
@failures_per_ip("RATELIMIT_CODE_PER_IP")  # each challenge also has its own caps
def resend_submit():
    challenge = None
    try:
        challenge = _browser_challenge()
        code_challenges.resend(challenge)
    except CodeProblem as problem:
        db.session.commit()
        return _render_verify(status=problem.status, error=problem.message, ended=problem.code == "challenge_ended",
                              challenge=challenge)
    db.session.commit()
    return redirect(url_for("twostep.verify_form", sent=1, next=safe_next(request.form.get("next", ""), default="") or None), code=303)


# --- API clients -------------------------------------------------------------------------------


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


@api_bp.post("/verify")
@operation("Finish a sign-in with the emailed code", body=VerifyIn, tags=("auth",),
           responses={200: VerifiedOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut, 503: ErrorOut})
@failures_per_ip("RATELIMIT_CODE_PER_IP")  # each challenge also has its own caps
def api_verify():
    body = parse_body(VerifyIn)
    try:
        challenge = code_challenges.find(body.challenge_id, body.client_secret)
        user = code_challenges.verify(challenge, code_challenges.parse_code(body.code))
    except CodeProblem:
        db.session.commit()
        raise
    device, secret = finish(challenge, user)
    pair = session_tokens.issue_pair(user, device_id=device.public_id)
    db.session.commit()
    return jsonify(VerifiedOut(access_token=pair.access, refresh_token=pair.refresh, expires_in=pair.expires_in,
                               device_token=secret, password_change_required=pair.password_change_required).model_dump())


@api_bp.post("/resend")
@operation("Email a new code for a pending sign-in (the previous code stops working)", body=ResendIn, tags=("auth",),
           responses={202: SentOut, 400: ErrorOut, 401: ErrorOut, 429: ErrorOut, 503: ErrorOut})
@failures_per_ip("RATELIMIT_CODE_PER_IP")  # each challenge also has its own caps
def api_resend():
    body = parse_body(ResendIn)
    try:
        code_challenges.resend(code_challenges.find(body.challenge_id, body.client_secret))
    except CodeProblem:
        db.session.commit()
        raise
    db.session.commit()
    return jsonify(SentOut(message="We sent a new code.").model_dump()), 202
