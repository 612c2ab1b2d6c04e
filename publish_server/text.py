"""One-line text people type (names, email addresses): which characters it may not hold.

Refused: control characters (C0 with CR and LF, DEL, C1 with NEL), format characters (bidi
overrides, zero-width spaces: they make text look like something else), the line and paragraph
separators U+2028/U+2029 (line breaks to ``str.splitlines`` and some mail software), and lone
surrogates (undecodable bytes from a command line). The zero-width joiner and non-joiner are
format characters too, but part of spelling names in several scripts and of emoji: allowed.
"""

from __future__ import annotations

import unicodedata

__all__ = ["first_control", "without_controls"]

_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
_ALLOWED = {"\u200c", "\u200d"}  # zero-width non-joiner, joiner


def _refused(ch: str) -> bool:
    return ch not in _ALLOWED and unicodedata.category(ch) in _REFUSED_CATEGORIES


def first_control(text: str) -> tuple[int, str] | None:
    """(index, character) of the first refused character in ``text``, or None."""
    return next(((i, ch) for i, ch in enumerate(text) if _refused(ch)), None)


def without_controls(text: str) -> str:
    """``text`` with each run of refused characters (and the spaces around it) made one space."""
    return " ".join("".join(" " if _refused(ch) else ch for ch in text).split())
