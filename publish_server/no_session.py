"""No Flask cookie session: the portal keeps sign-in state in its JWT cookies and the database.

Flask's default interface opens its signed cookie session on every request (an itsdangerous
serializer built, a cookie looked up and verified), ~6% of a download's CPU, for state the portal
never keeps. This one opens none, sets no cookie, and refuses writes loudly, so code that starts
using ``flask.session`` fails at once instead of quietly adding a second, unrevocable sign-in
cookie beside the tokens the deny-list governs.
"""

from __future__ import annotations

from flask.sessions import NullSession, SessionInterface

__all__ = ["NoSessionInterface"]


class _Unused(NullSession):
    """Empty and read-only: reading finds nothing, writing is a programming error."""

    def _refuse(self, *args, **kwargs):
        raise RuntimeError("the portal keeps no Flask session: sign-in state lives in its JWT cookies and the database")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _refuse


class NoSessionInterface(SessionInterface):
    null_session_class = _Unused

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None
