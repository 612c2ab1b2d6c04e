"""JWTs (flask-jwt-extended): who a token names, and which tokens no longer count.

A token is refused when its jti is on the deny-list (logout), when it was issued before the
user's ``tokens_valid_after`` (password change or reset, account disabled, all sessions
revoked), or when its user is gone or inactive.

Sessions: :func:`issue_pair` starts one (an access and a refresh token sharing a
``session_start`` claim; the access token also names its refresh token's jti, so logout can
revoke both from the access token alone: API clients send only that, and the browser's refresh
cookie, though sent with every request since it has Path=/, is read only by ``/auth/refresh``).
:func:`rotate` trades a refresh token for a new pair and puts the old one on the deny-list; it
refuses a session older than ``SESSION_HOURS`` (absolute) or whose refresh token is older than
``SESSION_IDLE_MINUTES`` (idle: every refresh re-issues it, so only an active session survives).
No token ever outlives its session: expiries are capped at ``session_start + SESSION_HOURS``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass

from flask import Flask, current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import bindparam, select

from ..errors import Unauthorized
from ..extensions import db, jwt
from ..models import Device, RevokedToken, User, utcnow

__all__ = ["init_app", "user_for", "token_state_columns", "token_state_params", "token_refused", "revoke", "revoke_all_for", "TokenPair", "issue_pair", "rotate", "revoke_pair"]


def user_for(payload: dict) -> User | None:
    """The user a decoded token names (by its ``sub``), or None."""
    return db.session.scalars(db.select(User).where(User.public_id == payload.get("sub"))).first()


def token_state_columns():
    """``revoked`` (the token's jti is on the deny-list) and ``device_ok`` (its device, if it names
    one, is still trusted): two EXISTS columns, with bound parameters ``jti`` and ``did``."""
    revoked = select(RevokedToken.jti).where(RevokedToken.jti == bindparam("jti")).exists()
    device_ok = select(Device.id).where(Device.public_id == bindparam("did"), Device.revoked_at.is_(None)).exists()
    return revoked.label("revoked"), device_ok.label("device_ok")


def token_state_params(payload: dict) -> dict | None:
    """The bound parameters of :func:`token_state_columns` (and ``sub``), or None for a token that
    names its user or device with anything but a string: not one of ours."""
    subject, device = payload.get("sub"), payload.get("did")
    if not isinstance(subject, str) or (device is not None and not isinstance(device, str)):
        return None
    return {"sub": subject, "jti": payload.get("jti"), "did": device}


def token_refused(payload: dict, *, active: bool, tokens_valid_after: dt.datetime, revoked: bool, device_ok: bool) -> bool:
    """The rule, given the state the database holds: deny-listed (logout), user disabled, device
    revoked (or gone), or issued before the user's ``tokens_valid_after``."""
    if revoked or not active or (payload.get("did") is not None and not device_ok):
        return True
    # iat has whole seconds; the issued_us claim tells apart tokens from the same second.
    issued_us = payload.get("issued_us", payload["iat"] * 1_000_000)
    return issued_us < int(tokens_valid_after.replace(tzinfo=dt.timezone.utc).timestamp() * 1_000_000)


@functools.cache
def _token_state_statement():
    # Every signed-in request asks these three things; one round trip answers them all.
    # Built once per process: building and cache-keying a statement costs more CPU than running it.
    return select(User, *token_state_columns()).where(User.public_id == bindparam("sub"))


def _denied(payload: dict) -> bool:
    """Is this token revoked (:func:`token_refused`), or its user gone?

    The user it loads is kept for this request's ``user_lookup_loader``, which flask-jwt-extended
    calls right after this check, so one query serves both. (Downloads ask for the token state
    and the grant in one query of their own: see :mod:`publish_server.download_gate`.)
    """
    g.pop("nbpress_token_user", None)
    params = token_state_params(payload)
    row = None if params is None else db.session.execute(_token_state_statement(), params).first()
    if row is None:
        return True
    user, revoked, device_ok = row
    if token_refused(payload, active=user.active, tokens_valid_after=user.tokens_valid_after, revoked=revoked, device_ok=device_ok):
        return True
    g.nbpress_token_user = (payload.get("jti"), user)
    return False


def init_app(app: Flask) -> None:
    @jwt.user_lookup_loader
    def _lookup(_header, payload):
        checked = g.pop("nbpress_token_user", None)
        if checked is not None and checked[0] == payload.get("jti"):
            return checked[1]  # loaded by the deny-list check of this same token a moment ago
        return user_for(payload)

    @jwt.user_lookup_error_loader
    def _lookup_failed(_header, _payload):
        raise Unauthorized()

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload) -> bool:
        return _denied(payload)

    @jwt.additional_claims_loader
    def _issued_precisely(_identity) -> dict:
        return {"issued_us": int(time.time() * 1_000_000)}

    for loader in (jwt.unauthorized_loader, jwt.invalid_token_loader, jwt.expired_token_loader,
                   jwt.revoked_token_loader, jwt.needs_fresh_token_loader):
        loader(_unauthorized)


def _unauthorized(*_args):
    raise Unauthorized()


def revoke(encoded_or_payload: str | dict) -> None:
    """Put one token (encoded, or a decoded payload such as ``get_jwt()``) on the deny-list."""
    payload = decode_token(encoded_or_payload, allow_expired=True) if isinstance(encoded_or_payload, str) else encoded_or_payload
    if db.session.get(RevokedToken, payload["jti"]) is None:
        expires = dt.datetime.fromtimestamp(payload["exp"], dt.timezone.utc).replace(tzinfo=None)
        db.session.add(RevokedToken(jti=payload["jti"], expires_at=expires))


def revoke_all_for(user: User) -> None:
    """Every token issued to ``user`` until now stops counting."""
    user.tokens_valid_after = utcnow()


@dataclass(frozen=True)
class TokenPair:
    """A signed-in session's tokens; ``expires_in`` is the access token's lifetime in seconds.

    ``password_change_required``: issued to a one-time password, so they open nothing but the
    password change (see :mod:`session`); API answers say so.
    """

    access: str
    refresh: str
    expires_in: int
    password_change_required: bool = False


def _session_ended() -> Exception:
    return Unauthorized("Your session has ended. Please sign in again.", code="session_expired")


def issue_pair(user: User, *, session_start: int | None = None, device_id: str | None = None) -> TokenPair:
    """New access + refresh tokens for ``user``; a new session unless ``session_start`` is given.

    ``device_id`` (the device's public id, claim ``did``) ties the session to the device it was
    started on: revoking the device ends the session at once.
    """
    settings = current_app.config["NBPRESS"]
    now = time.time()
    start = int(now) if session_start is None else int(session_start)
    remaining = start + settings["SESSION_HOURS"] * 3600 - now
    if remaining <= 1:
        raise _session_ended()
    device_claim = {"did": device_id} if device_id else {}
    refresh = create_refresh_token(
        identity=user.public_id, expires_delta=dt.timedelta(seconds=remaining),
        additional_claims={"session_start": start, **device_claim},
    )
    refresh_payload = decode_token(refresh)
    access_seconds = int(min(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds(), remaining))
    access = create_access_token(
        identity=user.public_id, expires_delta=dt.timedelta(seconds=access_seconds),
        additional_claims={"session_start": start, "rjti": refresh_payload["jti"], "rexp": refresh_payload["exp"], **device_claim},
    )
    return TokenPair(access=access, refresh=refresh, expires_in=access_seconds,
                     password_change_required=bool(user.must_change_password))


def rotate(refresh_payload: dict, user: User) -> TokenPair:
    """Trade a verified refresh token for a new pair; the presented one stops counting."""
    settings = current_app.config["NBPRESS"]
    now = time.time()
    start = refresh_payload.get("session_start")
    if not isinstance(start, int) or now - start > settings["SESSION_HOURS"] * 3600:
        raise _session_ended()
    issued = refresh_payload.get("issued_us", refresh_payload["iat"] * 1_000_000) / 1_000_000
    if now - issued > settings["SESSION_IDLE_MINUTES"] * 60:
        raise _session_ended()  # it only grows older, so no need to deny-list it
    revoke(refresh_payload)
    device = refresh_payload.get("did")
    return issue_pair(user, session_start=start, device_id=device if isinstance(device, str) else None)


def revoke_pair(access_payload: dict) -> None:
    """Logout: the access token and the refresh token issued with it."""
    revoke(access_payload)
    refresh_jti, refresh_exp = access_payload.get("rjti"), access_payload.get("rexp")
    if isinstance(refresh_jti, str) and isinstance(refresh_exp, int):
        revoke({"jti": refresh_jti, "exp": refresh_exp})
