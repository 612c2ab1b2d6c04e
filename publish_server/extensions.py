"""Flask extensions, created here unbound and bound to the app in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from jwt import ExpiredSignatureError
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class OneDecodeJWTManager(JWTManager):
    """flask-jwt-extended, verifying a token with one decode instead of three.

    The library first decodes the token unverified and reads its header (two more parses of the
    whole token) only to hand them to a decode-key loader; the portal sets none (one HS256
    secret), so the key is known before the token is read. The verified decode and its checks
    (signature, exp, nbf, iss, aud, identity claim, CSRF double submit) are the library's own.
    """

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        try:
            return _decode_jwt(
                algorithms=jwt_config.decode_algorithms, allow_expired=allow_expired, audience=jwt_config.decode_audience,
                csrf_value=csrf_value, encoded_token=encoded_token, identity_claim_key=jwt_config.identity_claim_key,
                issuer=jwt_config.decode_issuer, leeway=jwt_config.leeway, secret=jwt_config.decode_key,
                verify_aud=jwt_config.decode_audience is not None, verify_sub=jwt_config.verify_sub,
            )
        except ExpiredSignatureError:
            # Rare: the library's path attaches the header and claims its expired-token handler reads.
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)


def client_ip() -> str:
    """The limiter's key: request.remote_addr, already corrected by ProxyFix for the configured proxies only."""
    return request.remote_addr or "unknown"


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = OneDecodeJWTManager()
# Fails closed, explicitly: no swallowed storage errors, no per-process fallback (see rate_limits.py).
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True, swallow_errors=False,
                  in_memory_fallback_enabled=False)
