"""Handing a new session to the client: cookies for a browser, tokens in JSON for an API client.

Every way in ends here: a password on a trusted device (:mod:`second_step`), a correct code
(:mod:`views.code`) and a password change (:mod:`views.password`). The tokens come from
:func:`session_tokens.issue_pair`; how browsers keep them is described in :mod:`session`.
"""

from __future__ import annotations

from flask_jwt_extended import set_access_cookies, set_refresh_cookies
from pydantic import BaseModel, Field

from . import session_tokens
from .session import PASSWORD_CHANGE_REQUIRED_NOTE, remember_csrf

__all__ = ["start_browser_session", "TokensOut", "tokens_json"]


def start_browser_session(response, user, device=None):
    """Set the cookies of a new (or renewed) session on ``response`` (tied to ``device`` if given)."""
    pair = session_tokens.issue_pair(user, device_id=device.public_id if device is not None else None)
    set_access_cookies(response, pair.access)
    set_refresh_cookies(response, pair.refresh)
    remember_csrf(pair.access)
    return response


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    password_change_required: bool = Field(default=False, description=PASSWORD_CHANGE_REQUIRED_NOTE)


def tokens_json(pair: session_tokens.TokenPair) -> dict:
    return TokensOut(access_token=pair.access, refresh_token=pair.refresh, expires_in=pair.expires_in,
                     password_change_required=pair.password_change_required).model_dump()
