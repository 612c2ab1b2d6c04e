"""What must not reach a reader as it is: secret-looking names, passwords in URLs, locations.

Shared by the PDF (:mod:`toolkit.render.shown`: which parameters a report shows) and the publish
client (:mod:`toolkit.deliver.portal_client`: the parameters sent to the portal). A leaf module.
"""

from __future__ import annotations

import re
import string
from typing import Any

from .params import SECRET_SHOWN

__all__ = ["SECRET_NAME", "looks_secret", "looks_like_location", "mask_url_passwords", "url_passwords", "shareable",
           "hidden_values", "exposure_warnings"]

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
    pieces, copied = [], 0
    for start, end in _password_spans(text):
        pieces += [text[copied:start], SECRET_SHOWN]
        copied = end
    return "".join(pieces) + text[copied:]


def url_passwords(text: str) -> list[str]:
    """The passwords of the ``scheme://user:password@`` URLs in ``text``, in order."""
    return [text[start:end] for start, end in _password_spans(text)]


def _password_spans(text: str):
    """(start, end) of each URL password in ``text``, left to right, in one linear pass."""
    copied, at = 0, -1  # at: the first '@' or whitespace at or after the last password's start
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
                yield colon + 1, at
                copied = at
        found = text.find("://", max(found + 3, copied))


# Values shorter than this are masked where they are stored as parameters, not searched for in
# outputs: replacing a two-letter password everywhere would garble the kept notebook.
MIN_SEARCHED = 4


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def hidden_values(parameters: dict[str, Any]) -> list[str]:
    """What a run must mask in the text it keeps (outputs, errors, mails) besides its ``Secret``
    values: the passwords in URL values and the values of secret-looking names."""
    found: set[str] = set()
    for name, value in parameters.items():
        for text in _strings(value):
            found.update(url_passwords(text))
            if looks_secret(name):
                found.add(text)
    return sorted((v for v in found if len(v) >= MIN_SEARCHED), key=len, reverse=True)


def exposure_warnings(parameters: dict[str, Any]) -> list[str]:
    """One line per parameter whose value is masked because of what it looks like: the analyst
    should declare it ``Secret`` so it never enters the notebook at all."""
    lines = []
    for name, value in parameters.items():
        texts = _strings(value)
        if looks_secret(name) and any(texts):
            lines.append(f"parameter {name!r} looks like a secret: its value is masked outside the kernel; "
                         f"declare it `Secret` in the parameters cell to keep it out of the notebook")
        elif any(url_passwords(t) for t in texts):
            lines.append(f"parameter {name!r} holds a URL with a password: it is masked outside the kernel; "
                         f"make the password a `Secret` parameter to keep it out of the notebook")
    return lines
