"""What the operator commands share: the TEXT parameter type, lookups that fail with one line, a table printer."""

from __future__ import annotations

import re
import secrets

import click
from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Group, Publication, Report, User
from ..signin.passwords import Passwords
from ..text import first_control

__all__ = ["TEXT", "OTP_NOTE", "fail", "normal_email", "one", "find_user", "find_group", "find_report", "find_publication",
           "checked_name", "checked_display_name", "password_hasher", "one_time_password", "print_table", "when"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no look-alikes
OTP_NOTE = "Shown once; the user must choose a new password at first sign-in."


class _Text(click.ParamType):
    """A command-line value without control characters (see :mod:`publish_server.text`)."""

    name = "text"

    def convert(self, value, param, ctx):
        found = first_control(value)
        if found is not None:  # named by code point: the character itself is never echoed
            index, char = found
            self.fail(f"control character U+{ord(char):04X} at position {index + 1}: use printable text", param, ctx)
        return value


TEXT = _Text()


# --- lookups and small helpers ----------------------------------------------------------------


def fail(message: str):
    raise click.ClickException(message)


def normal_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 254 or not _EMAIL.fullmatch(cleaned):
        fail(f"not an email address: {email!r}")
    return cleaned


def one(stmt, missing: str):
    found = db.session.scalars(stmt).first()
    return found if found is not None else fail(missing)


def find_user(email: str) -> User:
    return one(select(User).where(User.email == email.strip().lower()), f"no user with email {email.strip()!r}")


def find_group(name: str) -> Group:
    return one(select(Group).where(Group.name == name), f"no group named {name!r} (create it with `groups add {name}`)")


def find_report(slug: str) -> Report:
    return one(select(Report).where(Report.slug == slug), f"no report with slug {slug!r}")


def find_publication(public_id: str) -> Publication:
    return one(select(Publication).where(Publication.public_id == public_id), f"no publication with id {public_id!r}")


def checked_name(value: str, what: str) -> str:
    cleaned = value.strip()  # control characters are refused by the TEXT parameter type
    if not cleaned or len(cleaned) > 80:
        fail(f"a {what} name has 1 to 80 printable characters")
    return cleaned


def checked_display_name(value: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > 120:
        fail("--name: use at most 120 characters")
    return cleaned


def password_hasher() -> Passwords:
    return Passwords.from_settings(current_app.config["NBPRESS"])


def one_time_password(passwords: Passwords) -> str:
    length = max(24, passwords.min_length)
    return "".join(secrets.choice(_OTP_ALPHABET) for _ in range(length))


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


def when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
