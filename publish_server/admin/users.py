"""``users``: add, disable, enable, reset-password, rename, set-role, list."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import audit
from ..errors import PasswordRejected
from ..extensions import db
from ..models import User, utcnow
from ..signin import session_tokens
from ..signin.devices import revoke_all as revoke_devices
from ..signin.password_step import notify_password_changed
from .common import (
    OTP_NOTE, TEXT, checked_display_name, fail, find_group, find_user, normal_email, one_time_password, password_hasher,
    print_table, when,
)

__all__ = ["users", "ROLES"]

ROLES = ("recipient", "operator", "admin")

users = AppGroup("users", help="Recipients and administrators. Names and emails may not hold control characters (CR, LF, ...).")


@users.command("add")
@click.argument("email", type=TEXT)
@click.option("--name", default="", type=TEXT, help="Display name: at most 120 characters, no control characters [default: the part before @].")
@click.option("--admin", is_flag=True, help="Administrator: sees every publication.")
@click.option("--operator", is_flag=True, help="Operator: sees every report's schedule, runs and failed notebooks (not its PDFs: those follow the grants).")
@click.option("--group", "group_names", multiple=True, metavar="GROUP", type=TEXT, help="Add to an existing group (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of generating a one-time one.")
def users_add(email: str, name: str, admin: bool, operator: bool, group_names: tuple[str, ...], password_stdin: bool) -> None:
    """Add a user; prints a generated one-time password once (they must change it)."""
    if admin and operator:
        raise click.UsageError("give at most one of --admin and --operator")
    address = normal_email(email)
    if db.session.scalars(select(User).where(User.email == address)).first():
        fail(f"a user with email {address!r} already exists")
    display_name = checked_display_name(name) or address.split("@")[0]
    member_of = [find_group(g) for g in group_names]
    passwords = password_hasher()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            passwords.check_policy(password, email=address)
        except PasswordRejected as exc:
            fail(f"password refused: {exc}")
    else:
        password = one_time_password(passwords)
    user = User(email=address, display_name=display_name, password_hash=passwords.hash(password),
                role="admin" if admin else "operator" if operator else "recipient", must_change_password=not password_stdin, groups=member_of)
    db.session.add(user)
    db.session.flush()
    audit.record("user_added", "ok", user_id=user.id, role=user.role, groups=[g.name for g in member_of])
    db.session.commit()
    click.echo(f"added {user.role} {address}" + (f" to {', '.join(group_names)}" if group_names else ""))
    if not password_stdin:  # stdout only, never a logger or the audit log
        click.echo(f"one-time password: {password}")
        click.echo(OTP_NOTE, err=True)


@users.command("disable")
@click.argument("email", type=TEXT)
def users_disable(email: str) -> None:
    """Disable a user and end all their sessions and tokens."""
    user = find_user(email)
    user.active = False
    session_tokens.revoke_all_for(user)
    audit.record("user_disabled", "ok", user_id=user.id)
    db.session.commit()
    click.echo(f"disabled {user.email}; their sessions and tokens are revoked")


@users.command("enable")
@click.argument("email", type=TEXT)
def users_enable(email: str) -> None:
    """Enable a disabled user again (earlier sessions stay revoked)."""
    user = find_user(email)
    user.active = True
    audit.record("user_enabled", "ok", user_id=user.id)
    db.session.commit()
    click.echo(f"enabled {user.email}")


@users.command("reset-password")
@click.argument("email", type=TEXT)
def users_reset_password(email: str) -> None:
    """Set a new one-time password (printed once) and end all the user's sessions."""
    user = find_user(email)
    passwords = password_hasher()
    password = one_time_password(passwords)
    user.password_hash = passwords.hash(password)
    user.must_change_password = True
    session_tokens.revoke_all_for(user)
    revoke_devices(user, utcnow(), by="operator")
    audit.record("password_reset", "ok", user_id=user.id, by="operator")
    db.session.commit()
    notify_password_changed(user, utcnow(), by_operator=True)  # the owner hears of it, never the password
    click.echo(f"reset the password of {user.email}; their sessions and tokens are revoked")
    click.echo(f"one-time password: {password}")  # stdout only, never a logger or the audit log
    click.echo(OTP_NOTE, err=True)


@users.command("rename")
@click.argument("email", type=TEXT)
@click.option("--name", required=True, type=TEXT, help="The new display name: 1 to 120 characters, no control characters.")
def users_rename(email: str, name: str) -> None:
    """Change a user's display name (shown on their pages and in the mails they get)."""
    user = find_user(email)
    display_name = checked_display_name(name) or fail("--name: give 1 to 120 characters")
    user.display_name = display_name
    audit.record("user_renamed", "ok", user_id=user.id)
    db.session.commit()
    click.echo(f"renamed {user.email}: {display_name}")


@users.command("set-role")
@click.argument("email", type=TEXT)
@click.argument("role", type=click.Choice(ROLES))
def users_set_role(email: str, role: str) -> None:
    """Make a user a recipient (reads what is granted), an operator (also sees every report's
    schedule, runs and failed notebooks) or an admin (reads everything)."""
    user = find_user(email)
    if user.role == role:
        click.echo(f"{user.email} is already {role}")
        return
    before, user.role = user.role, role
    audit.record("user_role_changed", "ok", user_id=user.id, before=before, role=role)
    db.session.commit()
    click.echo(f"{user.email}: {before} -> {role}")


@users.command("list")
def users_list() -> None:
    """List users with role, state and groups."""
    rows = [
        [u.email, u.display_name, u.role, "active" if u.active else "disabled",
         ",".join(sorted(g.name for g in u.groups)) or "-", when(u.created_at)]
        for u in db.session.scalars(select(User).order_by(User.email))
    ]
    print_table(["email", "name", "role", "state", "groups", "created (UTC)"], rows)
