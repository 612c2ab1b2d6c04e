"""Passwords: Argon2id hashes with an optional pepper, and the policy new passwords must meet.

The rules (docs/security-model.md; OWASP ASVS 4.0.3 V2.1 and V2.4, NIST SP 800-63B):
NFKC-normalised, length checked before hashing (no truncation, no composition rules), common
passwords refused, rehash on sign-in when parameters rise, and a dummy hash for unknown users so
both answers take the same time.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import unicodedata
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import PasswordRejected

__all__ = ["Passwords"]

COMMON_LIST = Path(__file__).parent.parent / "data" / "common-passwords.txt.gz"  # publish_server/data


@functools.cache
def _common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


class Passwords:
    def __init__(self, *, memory_kib: int, time_cost: int, pepper: str = "", min_length: int = 12, max_length: int = 128):
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)
        self.pepper = pepper.encode()
        self.min_length, self.max_length = min_length, max_length
        self._dummy = self.hasher.hash("dummy password for unknown users")

    @classmethod
    def from_settings(cls, settings: dict) -> Passwords:
        return cls(
            memory_kib=settings["ARGON2_MEMORY_KIB"],
            time_cost=settings["ARGON2_TIME_COST"],
            pepper=settings["PASSWORD_PEPPER"],
            min_length=settings["PASSWORD_MIN_LENGTH"],
            max_length=settings["PASSWORD_MAX_LENGTH"],
        )

    def _prepared(self, password: str) -> str:
        text = unicodedata.normalize("NFKC", password)
        if self.pepper:
            return hmac.new(self.pepper, text.encode(), hashlib.sha256).hexdigest()
        return text

    def check_policy(self, password: object, *, email: str = "") -> str:
        if not isinstance(password, str):
            raise PasswordRejected("Enter a password.")
        text = unicodedata.normalize("NFKC", password)
        if len(text) > self.max_length:
            raise PasswordRejected(f"Use at most {self.max_length} characters.")
        if len(text) < self.min_length:
            raise PasswordRejected(f"Use at least {self.min_length} characters.")
        lowered = text.lower()
        if lowered in _common_passwords() or (email and lowered in {email.lower(), email.split("@")[0].lower()}):
            raise PasswordRejected("This password is too common; choose another.")
        return text

    def hash(self, password: str) -> str:
        return self.hasher.hash(self._prepared(password))

    def verify(self, stored_hash: str | None, password: object) -> bool:
        """True when ``password`` matches; for an unknown user (``None``) spends the same time."""
        if not isinstance(password, str) or len(password) > self.max_length:
            password = ""  # still hash below: refusing early would be faster, so measurable
        try:
            return self.hasher.verify(stored_hash or self._dummy, self._prepared(password)) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)
