"""JSON from clients, bounded before it is parsed.

Python's json module recurses once per level of nesting, so 5,000 nested ``[`` (a 10 KB body)
raise RecursionError: a 500 with a traceback, before anyone has signed in. Every JSON text a
client sends goes through :func:`loads`, which refuses it with a 400 naming ``what`` when it is
over its size cap or nested deeper than :data:`MAX_DEPTH`, both checked in one linear pass
before ``json.loads`` sees it.

    data = jsonbody.loads(raw, what="body", max_bytes=jsonbody.MAX_BODY)
"""

from __future__ import annotations

import json
from typing import Any

from .errors import BadRequest

__all__ = ["MAX_DEPTH", "MAX_BODY", "nesting", "loads"]

MAX_DEPTH = 32  # the portal's own bodies nest 3 deep; a publication's parameters a few more
MAX_BODY = 64 * 1024  # an API request body (sign-in, code, sign-out): a few hundred bytes in use


def nesting(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside JSON strings (backslash escapes honoured)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(raw: bytes | str, *, what: str, max_bytes: int) -> Any:
    """``raw`` parsed as JSON; a 400 ``"{what}: ..."`` when too large, too deep or not JSON."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise BadRequest(f"{what}: at most {max_bytes // 1024} KiB of JSON.")
    try:
        # Counted on text, not bytes: in UTF-16 a byte 0x22 ('"') can be half of another character.
        text = raw.decode(json.detect_encoding(raw)) if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadRequest(f"{what}: not valid JSON (undecodable text).") from None
    if nesting(text) > MAX_DEPTH:
        raise BadRequest(f"{what}: nested deeper than {MAX_DEPTH} levels.")
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise BadRequest(f"{what}: not valid JSON.") from None
