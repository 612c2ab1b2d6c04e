"""What must not reach a reader as it is: secret-looking names, passwords in URLs, locations.

Shared by the PDF (:mod:`toolkit.render.shown`: which parameters a report shows) and the publish
client (:mod:`toolkit.deliver.portal_client`: the parameters sent to the portal). A leaf module.
"""

from __future__ import annotations

import re
import string
from typing import Any

from .params import SECRET_SHOWN

__all__ = ["SECRET_NAME", "looks_secret", "looks_like_location", "mask_url_passwords", "shareable"]

# A parameter whose name matches is treated as a secret (its value is never shown nor sent).
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|api_?key|credential)")
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")  # RFC 3986
_PATH = re.compile(r"^(/|\./|\.\./|~|\.\\|\.\.\\|[A-Za-z]:[\\/]|\\\\)")


def looks_secret(name: str) -> bool:
    """A name such as ``db_password``, ``api_key`` or ``access_token``."""
    return bool(SECRET_NAME.search(name))


def looks_like_location(value: Any) -> bool:
    """A URL (``://``) or a filesystem path (``/``, ``./``, ``../``, ``~``, ``C:\\``, ``\\\\server``),
    or a list holding one."""
    if isinstance(value, str):
        text = value.strip()
        return "://" in text or bool(_PATH.match(text))
    if isinstance(value, (list, tuple)):
        return any(looks_like_location(item) for item in value)
    return False


def shareable(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recipients may see them: no secret-named values, no passwords in URLs."""
    shown: dict[str, Any] = {}
    for name, value in parameters.items():
        if looks_secret(name):
            shown[name] = SECRET_SHOWN
        elif isinstance(value, str):
            shown[name] = mask_url_passwords(value)
        elif isinstance(value, list):
            shown[name] = [mask_url_passwords(v) if isinstance(v, str) else v for v in value]
        else:
            shown[name] = value
    return shown


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of each ``scheme://user:password@`` shown as ``***``.

    The scheme is a letter, then letters, digits, '+', '.', '-'; the user has no ':', '/', '@' or
    whitespace; the password runs to the next '@', with no whitespace on the way. One pass, linear
    in the length of ``text`` (a regex backtracked: quadratic). The portal masks again with its
    own copy of this function (tests/test_url_passwords.py holds both to the same cases).
    """
    pieces, copied, at = [], 0, -1  # at: the first '@' or whitespace at or after the last password's start
    found = text.find("://")
    while found != -1:
        start = found
        while start > copied and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        colon = found + 3
        while colon < len(text) and text[colon] not in ":/@" and not text[colon].isspace():
            colon += 1
        if any(ch.isalpha() for ch in text[start:found]) and text.startswith(":", colon):
            if at <= colon:  # else the '@' found for an earlier URL ends this password too: scanned once
                at = colon + 1
                while at < len(text) and text[at] != "@" and not text[at].isspace():
                    at += 1
            if at > colon + 1 and text.startswith("@", at):
                pieces += [text[copied : colon + 1], "***"]
                copied = at
        found = text.find("://", max(found + 3, copied))
    return "".join(pieces) + text[copied:]
