"""The second sign-in step: device check after the password, then the emailed code.

:func:`after_password_web` / :func:`after_password_api` run once :func:`password_step.authenticate`
accepted the password. A trusted device (see :mod:`devices`) gets tokens at once; anything else
gets a login challenge (see :mod:`code_challenges`) and an answer that says only that a code was
sent. Browsers are bound to their challenge by the ``login_challenge`` cookie (HttpOnly,
SameSite=Strict, Path=/, ``__Host-`` prefixed when cookies are Secure, like every cookie: see
:mod:`session`; it holds ``<challenge id>.<binding secret>``), and the verify
and resend forms repeat the challenge id in a hidden field (a double submit no other site can
forge). API clients get ``challenge_id`` and ``client_secret`` and send both back. Nothing but
verify and resend (:mod:`views.code`) accepts that partial state. On a correct code
:func:`finish` makes the device trusted (browsers: a device cookie; API clients: a
``device_token``) and emails a "new sign-in" notice; the views then issue the tokens.

IP and MAC come from ``request.remote_addr`` (corrected by ProxyFix for ``TRUSTED_PROXIES``
only) and the kernel's neighbour table: never from headers or the body.
"""

from __future__ import annotations

import logging

from flask import current_app, jsonify, redirect, request, url_for
from pydantic import BaseModel, Field

from .. import audit
from ..errors import CodeProblem, MailError
from ..extensions import db
from ..mail import send_template
from ..models import Device, User
from . import code_challenges, devices, session_tokens
from .clock import now
from .mac_addresses import MacReading, read_mac
from .new_session import start_browser_session, tokens_json
from .session import cookie_args, cookie_name, safe_next
from ..text import without_controls

__all__ = ["after_password_web", "after_password_api", "finish", "device_cookie_name", "client_ip", "client_mac",
           "ChallengeOut", "CHALLENGE_COOKIE", "CODE_SENT"]

log = logging.getLogger(__name__)

CHALLENGE_COOKIE = "login_challenge"  # the cookie is cookie_name(CHALLENGE_COOKIE)
CODE_SENT = "We sent a sign-in code to your email address."


def device_cookie_name() -> str:
    return cookie_name("nbpress_device")


def client_ip() -> str:
    return request.remote_addr or ""


def client_mac(ip: str) -> MacReading:
    """The MAC of ``ip`` from the kernel's neighbour table (when the check is on)."""
    if not current_app.config["NBPRESS"]["DEVICE_MAC_CHECK"]:
        return MacReading(None, "unknown: MAC check off")
    return read_mac(ip)


def _user_agent() -> str:
    # The client's text, kept in device records and shown on the devices page: no control
    # characters (PostgreSQL refuses NUL outright).
    return without_controls(request.headers.get("User-Agent", "")[:300])


def _start(user: User, verdict: devices.Verdict, client: str, ip: str, mac: MacReading) -> code_challenges.Started:
    return code_challenges.start(user, device=verdict.device, reason=verdict.reason or "new_device", client=client,
                                 ip=ip, mac=mac, user_agent=_user_agent())


def _notify(user: User, device: Device, ip: str) -> None:
    """The "new sign-in" email: time, IP, device; a failure is logged, the sign-in stands."""
    try:
        send_template("new_signin", to_name=user.display_name, to_address=user.email,
                      subject="New sign-in to your Notebook Press account", name=user.display_name or user.email,
                      when=device.last_seen_at.strftime("%Y-%m-%d %H:%M"), ip=ip or "unknown", device=device.name)
    except MailError as exc:
        log.error("new sign-in notice for user %s not sent: %s", user.id, exc)


def finish(challenge, user: User) -> tuple[Device, str]:
    """After a correct code: trust the device (returns it and its new secret) and notify the user."""
    ip = client_ip()
    mac = client_mac(ip)
    device = db.session.get(Device, challenge.device_id) if challenge.device_id else None
    device, secret = devices.trust(user, device, client=challenge.client, ip=ip, mac=mac,
                                   user_agent=_user_agent(), now=now())
    audit.record("device.trust", "ok", user_id=user.id, device=device.public_id, reason=challenge.reason,
                 mac_status=mac.status)
    _notify(user, device, ip)
    return device, secret


# --- browsers --------------------------------------------------------------------------------


def after_password_web(user: User, next_url: str, render_login):
    """The response to a correct password from the sign-in form."""
    ip = client_ip()
    mac = client_mac(ip)
    verdict = devices.check(user, request.cookies.get(device_cookie_name()), ip, mac, now())
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
                        max_age=current_app.config["NBPRESS"]["CODE_MINUTES"] * 60, **cookie_args())
    return response


# --- API clients -------------------------------------------------------------------------------


class ChallengeOut(BaseModel):
    challenge_id: str
    client_secret: str = Field(description="Send back with the code; binds the challenge to this client")
    expires_in: int = Field(description="Seconds until the code expires")
    message: str = CODE_SENT


def after_password_api(user: User, device_token: str | None):
    """The answer to a correct password from ``POST /api/v1/auth/login``."""
    ip = client_ip()
    mac = client_mac(ip)
    verdict = devices.check(user, device_token, ip, mac, now())
    if verdict.trusted:
        audit.record("login.device", "trusted", user_id=user.id, device=verdict.device.public_id, client="api")
        pair = session_tokens.issue_pair(user, device_id=verdict.device.public_id)
        return jsonify(tokens_json(pair))
    started = _start(user, verdict, "api", ip, mac)  # CodeProblem -> JSON error
    seconds = current_app.config["NBPRESS"]["CODE_MINUTES"] * 60
    body = ChallengeOut(challenge_id=started.challenge.public_id, client_secret=started.binding, expires_in=seconds)
    return jsonify(body.model_dump()), 202
