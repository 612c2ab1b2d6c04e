"""Login challenges: the emailed code between a correct password and a trusted device.

A challenge is created after a correct password on a device that :func:`devices.check` does
not trust. Its code (``CODE_DIGITS`` digits from :mod:`secrets`) is emailed and stored only as
HMAC-SHA256 over the challenge id and the code, keyed with ``CODE_HMAC_KEY`` (or a key derived
from ``SECRET_KEY`` with HKDF), so a code is worth nothing for another challenge. The challenge
is bound to whoever started it by a random binding secret (a cookie for browsers, the
``client_secret`` for API clients) stored as SHA-256. It lives ``CODE_MINUTES``, accepts
``CODE_MAX_ATTEMPTS`` wrong codes, is used once, and a resend replaces its code. At most
``CODES_PER_HOUR`` codes go to one account per hour. If the mail cannot be sent the challenge is
deleted (nothing half-open). Times come from :mod:`clock` (injectable in tests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

from flask import current_app

from sqlalchemy import update

from .. import audit
from ..errors import CodeProblem, MailError
from ..extensions import db
from ..mail import send_template
from ..models import Device, LoginChallenge, User
from . import guess_counters
from .clock import now
from .devices import hash_secret
from .mac_addresses import MacReading

__all__ = ["Started", "start", "resend", "verify", "find", "parse_code", "ended", "masked_address"]

log = logging.getLogger(__name__)

_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
NOT_SENT = "We could not send the code. Please try again in a moment."


def _problem(status: int, code: str, message: str) -> CodeProblem:
    problem = CodeProblem(message, code=code)
    problem.status = status
    return problem


def ended() -> CodeProblem:
    return _problem(401, "challenge_ended", "This sign-in has ended. Please sign in again.")


def _key() -> bytes:
    settings = current_app.config["NBPRESS"]
    if settings["CODE_HMAC_KEY"]:
        return settings["CODE_HMAC_KEY"].encode()
    # HKDF-SHA256 (RFC 5869), one output block: a key for codes only, apart from Flask's uses.
    prk = hmac.new(b"nbpress-code-hmac-salt", settings["SECRET_KEY"].encode(), hashlib.sha256).digest()
    return hmac.new(prk, b"nbpress login code v1" + b"\x01", hashlib.sha256).digest()


def _code_hmac(challenge_id: str, code: str) -> str:
    return hmac.new(_key(), f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    digits = current_app.config["NBPRESS"]["CODE_DIGITS"]
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def parse_code(raw: object) -> str:
    """Exactly ``CODE_DIGITS`` ASCII digits, else 400 (letters, full-width digits, null, lists...)."""
    digits = current_app.config["NBPRESS"]["CODE_DIGITS"]
    if not isinstance(raw, str) or not re.fullmatch(rf"[0-9]{{{digits}}}", raw, flags=re.ASCII):
        raise _problem(400, "code_malformed", f"Enter the {digits} digits from the email.")
    return raw


def masked_address(email: str) -> str:
    """``a***@example.org``: enough for its owner to recognise, little for someone looking on."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


@dataclass(frozen=True)
class Started:
    challenge: LoginChallenge
    binding: str  # give to the client (cookie or client_secret); only its hash is stored


def _codes_key(user: User) -> str:
    return f"codes:{user.id}"


def _take_code_slot(user: User, moment: dt.datetime) -> bool:
    """One of the account's ``CODES_PER_HOUR`` codes, taken atomically (see :mod:`guess_counters`)."""
    limit = current_app.config["NBPRESS"]["CODES_PER_HOUR"]
    return guess_counters.take(_codes_key(user), limit=limit, window=dt.timedelta(hours=1), moment=moment) is not None


def _too_many() -> CodeProblem:
    return _problem(429, "too_many_codes", "Too many codes were sent to this account. Please wait an hour and try again.")


def _email_code(user: User, challenge: LoginChallenge, code: str) -> None:
    send_template("code", to_name=user.display_name, to_address=user.email, subject="Your Notebook Press sign-in code",
                  name=user.display_name or user.email, code=code, minutes=current_app.config["NBPRESS"]["CODE_MINUTES"],
                  when=challenge.created_at.strftime("%Y-%m-%d %H:%M"), ip=challenge.ip or "unknown")


def start(user: User, *, device: Device | None, reason: str, client: str, ip: str, mac: MacReading,
          user_agent: str) -> Started:
    """Create a challenge and email its code; raises :class:`CodeProblem` (429 cap, 503 mail)."""
    settings = current_app.config["NBPRESS"]
    moment = now()
    if not _take_code_slot(user, moment):
        audit.record("login.challenge", "throttled", user_id=user.id, reason=reason, client=client)
        raise _too_many()
    binding = secrets.token_urlsafe(32)
    challenge = LoginChallenge(
        user_id=user.id, device_id=device.id if device is not None else None, binding_hash=hash_secret(binding),
        code_hmac="", client=client, reason=reason, ip=ip or "", mac=mac.mac, mac_status=mac.status,
        user_agent=(user_agent or "")[:300], created_at=moment,
        expires_at=moment + dt.timedelta(minutes=settings["CODE_MINUTES"]), attempts=0, sends=1)
    db.session.add(challenge)
    db.session.flush()  # the public id is known now
    code = _new_code()
    challenge.code_hmac = _code_hmac(challenge.public_id, code)
    try:
        _email_code(user, challenge, code)
    except MailError as exc:
        db.session.delete(challenge)
        guess_counters.give_back(_codes_key(user))
        log.error("sign-in code for user %s not sent: %s", user.id, exc)
        audit.record("login.challenge", "mail_failed", user_id=user.id, reason=reason, client=client)
        raise _problem(503, "code_not_sent", NOT_SENT) from None
    audit.record("login.challenge", "sent", user_id=user.id, reason=reason, client=client, challenge=challenge.public_id)
    return Started(challenge, binding)


def find(challenge_id: object, binding: object) -> LoginChallenge:
    """The open challenge with this id *and* binding, else 401 (the same for every mismatch)."""
    if not isinstance(challenge_id, str) or not isinstance(binding, str) or len(binding) > 100:
        raise ended()
    if not _PUBLIC_ID.fullmatch(challenge_id):  # ids are token_urlsafe; PostgreSQL refuses NUL (a 500)
        raise ended()
    challenge = db.session.scalars(db.select(LoginChallenge).where(LoginChallenge.public_id == challenge_id)).first()
    if challenge is None or not hmac.compare_digest(challenge.binding_hash, hash_secret(binding)):
        raise ended()
    if challenge.used_at is not None or challenge.expires_at <= now() or challenge.attempts >= current_app.config["NBPRESS"]["CODE_MAX_ATTEMPTS"]:
        raise ended()
    return challenge


def resend(challenge: LoginChallenge) -> None:
    """A new code for the same challenge; the previous code stops working at once."""
    user = db.session.get(User, challenge.user_id)
    if not _take_code_slot(user, now()):
        audit.record("login.resend", "throttled", user_id=user.id)
        raise _too_many()
    code = _new_code()
    previous, before = challenge.code_hmac, challenge.previous_code_hmac
    challenge.code_hmac, challenge.previous_code_hmac = _code_hmac(challenge.public_id, code), previous
    challenge.sends += 1
    try:
        _email_code(user, challenge, code)
    except MailError as exc:
        challenge.code_hmac, challenge.previous_code_hmac, challenge.sends = previous, before, challenge.sends - 1
        guess_counters.give_back(_codes_key(user))
        log.error("resent sign-in code for user %s not sent: %s", user.id, exc)
        audit.record("login.resend", "mail_failed", user_id=user.id)
        raise _problem(503, "code_not_sent", NOT_SENT) from None
    audit.record("login.resend", "sent", user_id=user.id, challenge=challenge.public_id)


def _take_attempt(challenge: LoginChallenge, moment: dt.datetime) -> int | None:
    """Claim one of the challenge's attempts atomically: its number, or None when it has ended.

    A conditional UPDATE that only an open challenge with attempts left matches: however many
    codes arrive at once, at most ``CODE_MAX_ATTEMPTS`` are compared, each told its own count.
    """
    limit = current_app.config["NBPRESS"]["CODE_MAX_ATTEMPTS"]
    table = LoginChallenge.__table__
    taken = db.session.execute(
        update(table).where(table.c.id == challenge.id, table.c.attempts < limit, table.c.used_at.is_(None),
                            table.c.expires_at > moment)
        .values(attempts=table.c.attempts + 1).returning(table.c.attempts)).scalar()
    db.session.commit()  # visible to every other request before the code is compared
    return taken


def _use(challenge: LoginChallenge, moment: dt.datetime) -> bool:
    """Mark the challenge used, once: of two right codes at once only one signs in."""
    table = LoginChallenge.__table__
    used = db.session.execute(update(table).where(table.c.id == challenge.id, table.c.used_at.is_(None)).values(used_at=moment))
    return used.rowcount == 1


def verify(challenge: LoginChallenge, code: str) -> User:
    """Check ``code`` (already :func:`parse_code`-d); on success the challenge is used up."""
    limit = current_app.config["NBPRESS"]["CODE_MAX_ATTEMPTS"]
    moment = now()
    attempt = _take_attempt(challenge, moment)
    if attempt is None:
        raise ended()
    expected = _code_hmac(challenge.public_id, code)
    if not hmac.compare_digest(challenge.code_hmac, expected):
        left = limit - attempt
        audit.record("login.code", "failed", user_id=challenge.user_id, challenge=challenge.public_id, left=left)
        if left <= 0:
            raise _problem(401, "challenge_ended", "Too many wrong codes. Please sign in again.")
        tries = f"{left} {'try' if left == 1 else 'tries'} left."
        if challenge.previous_code_hmac and hmac.compare_digest(challenge.previous_code_hmac, expected):
            raise _problem(401, "code_replaced", f"That code was replaced when a new one was sent. "
                                                 f"Use the code in the newest email. {tries}")
        raise _problem(401, "code_invalid", f"That code is not right. {tries}")
    if not _use(challenge, moment):
        raise ended()
    user = db.session.get(User, challenge.user_id)
    if user is None or not user.active:
        raise ended()
    audit.record("login.code", "ok", user_id=user.id, challenge=challenge.public_id)
    return user
