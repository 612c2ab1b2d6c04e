"""Withdrawing a publication: the row stays (its version number and audit trail with it), the
file is no longer served, and readers are told why (410 Gone with the reason).

Used by the API (publisher token) and the operator CLI. No ``request`` in here; the caller commits.
"""

from __future__ import annotations

from . import audit
from .errors import BadRequest
from .models import Publication, utcnow
from .text import first_control

__all__ = ["REASON_MAX", "checked_reason", "withdraw"]

REASON_MAX = 500


def checked_reason(reason: str) -> str:
    """The reason readers will see: 1 to 500 printable characters (400 otherwise)."""
    cleaned = " ".join((reason or "").split())
    if not cleaned or len(cleaned) > REASON_MAX or first_control(cleaned) is not None:
        raise BadRequest(f"A withdrawal needs a reason of 1 to {REASON_MAX} printable characters.")
    return cleaned


def withdraw(publication: Publication, reason: str, *, by: str, user_id: int | None = None) -> bool:
    """Withdraw ``publication``; False (and nothing changed) when it already was.

    The first withdrawal's reason stands: a second call must not rewrite what readers were told.
    Audit rows are only ever added, never removed.
    """
    cleaned = checked_reason(reason)
    if publication.withdrawn_at is not None:
        return False
    publication.withdrawn_at = utcnow()
    publication.withdrawn_by = by[:120]
    publication.withdrawn_reason = cleaned
    audit.record("publication_withdrawn", "ok", user_id=user_id, publication=publication.public_id,
                 report=publication.report.slug, version=publication.version, by=by, reason=cleaned)
    return True
