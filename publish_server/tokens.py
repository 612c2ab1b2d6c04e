"""JWTs (flask-jwt-extended): who a token names, and which tokens no longer count.

A token is refused when its jti is on the deny-list (logout), when it was issued before the
user's ``tokens_valid_after`` (password change or reset, account disabled, all sessions
revoked), or when its user is gone or inactive.
"""

from __future__ import annotations

import datetime as dt
import time

from flask import Flask
from flask_jwt_extended import decode_token, get_jwt

from .extensions import db, jwt
from .models import RevokedToken, User, utcnow

__all__ = ["init_app", "revoke", "revoke_all_for"]


def _user_for(payload: dict) -> User | None:
    return db.session.scalars(db.select(User).where(User.public_id == payload.get("sub"))).first()


def init_app(app: Flask) -> None:
    @jwt.user_lookup_loader
    def _lookup(_header, payload):
        return _user_for(payload)

    @jwt.user_lookup_error_loader
    def _lookup_failed(_header, _payload):
        from .errors import Unauthorized

        raise Unauthorized()

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload) -> bool:
        if db.session.get(RevokedToken, payload["jti"]) is not None:
            return True
        user = _user_for(payload)
        if user is None or not user.active:
            return True
        # iat has whole seconds; the issued_us claim tells apart tokens from the same second.
        issued_us = payload.get("issued_us", payload["iat"] * 1_000_000)
        valid_after = user.tokens_valid_after.replace(tzinfo=dt.timezone.utc)
        return issued_us < int(valid_after.timestamp() * 1_000_000)

    @jwt.additional_claims_loader
    def _issued_precisely(_identity) -> dict:
        return {"issued_us": int(time.time() * 1_000_000)}

    for loader in (jwt.unauthorized_loader, jwt.invalid_token_loader, jwt.expired_token_loader,
                   jwt.revoked_token_loader, jwt.needs_fresh_token_loader):
        loader(_unauthorized)


def _unauthorized(*_args):
    from .errors import Unauthorized

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


def current_payload() -> dict:
    return get_jwt()
