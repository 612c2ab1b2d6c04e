"""Operator commands: ``flask --app publish_server <command>`` or ``nbpress portal <command>``.

Each command is one transaction committed at its end; a problem is one line on stderr and a
non-zero exit (click's ``Error: ...``, status 1; usage errors status 2). Text arguments with
control characters (CR, LF, NUL, DEL, U+2028 ...) are usage errors: nothing typed here can reach a
mail header, a terminal or a log line as more than text. One-time passwords and publisher tokens
are printed to stdout exactly once and never logged or audited.

``python -m publish_server.admin ...`` (what ``nbpress portal ...`` runs) is the same command set
with two differences: a settings problem is one line instead of a traceback, and its ``serve
--dev`` writes the development secrets *before* the app is built, which a command registered on
the app cannot do (Flask builds the app to find its commands).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, ScriptInfo, with_appcontext
from sqlalchemy import select

from . import audit
from .extensions import db
from .models import AuditEvent, Grant, Group, Membership, Publication, PublisherToken, Report, User, utcnow
from .errors import PasswordRejected
from .signin.passwords import Passwords
from .text import first_control

__all__ = ["init_app", "main"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no look-alikes
_OTP_NOTE = "Shown once; the user must choose a new password at first sign-in."


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


def init_app(app: Flask) -> None:
    for command in (init_db, users, groups, grant, revoke_grant, tokens, publications, audit_group, devices_group):
        app.cli.add_command(command)


# --- lookups and small helpers ----------------------------------------------------------------


def _fail(message: str):
    raise click.ClickException(message)


def _normal_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 254 or not _EMAIL.fullmatch(cleaned):
        _fail(f"not an email address: {email!r}")
    return cleaned


def _one(stmt, missing: str):
    found = db.session.scalars(stmt).first()
    return found if found is not None else _fail(missing)


def _user(email: str) -> User:
    return _one(select(User).where(User.email == email.strip().lower()), f"no user with email {email.strip()!r}")


def _group(name: str) -> Group:
    return _one(select(Group).where(Group.name == name), f"no group named {name!r} (create it with `groups add {name}`)")


def _report(slug: str) -> Report:
    return _one(select(Report).where(Report.slug == slug), f"no report with slug {slug!r}")


def _publication(public_id: str) -> Publication:
    return _one(select(Publication).where(Publication.public_id == public_id), f"no publication with id {public_id!r}")


def _name(value: str, what: str) -> str:
    cleaned = value.strip()  # control characters are refused by the TEXT parameter type
    if not cleaned or len(cleaned) > 80:
        _fail(f"a {what} name has 1 to 80 printable characters")
    return cleaned


def _display_name(value: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > 120:
        _fail("--name: use at most 120 characters")
    return cleaned


def _passwords() -> Passwords:
    return Passwords.from_settings(current_app.config["NBPRESS"])


def _one_time_password(passwords: Passwords) -> str:
    length = max(24, passwords.min_length)
    return "".join(secrets.choice(_OTP_ALPHABET) for _ in range(length))


def _table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


# --- database ----------------------------------------------------------------------------------


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database to the latest schema (same as `db upgrade`)."""
    from flask_migrate import upgrade

    upgrade()
    click.echo("database is at the latest schema")


# --- users ---------------------------------------------------------------------------------------

users = AppGroup("users", help="Recipients and administrators. Names and emails may not hold control characters (CR, LF, ...).")


@users.command("add")
@click.argument("email", type=TEXT)
@click.option("--name", default="", type=TEXT, help="Display name: at most 120 characters, no control characters [default: the part before @].")
@click.option("--admin", is_flag=True, help="Administrator: sees every publication.")
@click.option("--group", "group_names", multiple=True, metavar="GROUP", type=TEXT, help="Add to an existing group (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of generating a one-time one.")
def users_add(email: str, name: str, admin: bool, group_names: tuple[str, ...], password_stdin: bool) -> None:
    """Add a user; prints a generated one-time password once (they must change it)."""
    address = _normal_email(email)
    if db.session.scalars(select(User).where(User.email == address)).first():
        _fail(f"a user with email {address!r} already exists")
    display_name = _display_name(name) or address.split("@")[0]
    member_of = [_group(g) for g in group_names]
    passwords = _passwords()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            passwords.check_policy(password, email=address)
        except PasswordRejected as exc:
            _fail(f"password refused: {exc}")
    else:
        password = _one_time_password(passwords)
    user = User(email=address, display_name=display_name, password_hash=passwords.hash(password),
                role="admin" if admin else "recipient", must_change_password=not password_stdin, groups=member_of)
    db.session.add(user)
    db.session.flush()
    audit.record("user_added", "ok", user_id=user.id, role=user.role, groups=[g.name for g in member_of])
    db.session.commit()
    click.echo(f"added {user.role} {address}" + (f" to {', '.join(group_names)}" if group_names else ""))
    if not password_stdin:  # stdout only, never a logger or the audit log
        click.echo(f"one-time password: {password}")
        click.echo(_OTP_NOTE, err=True)


@users.command("disable")
@click.argument("email", type=TEXT)
def users_disable(email: str) -> None:
    """Disable a user and end all their sessions and tokens."""
    from .signin import session_tokens as jwt_tokens

    user = _user(email)
    user.active = False
    jwt_tokens.revoke_all_for(user)
    audit.record("user_disabled", "ok", user_id=user.id)
    db.session.commit()
    click.echo(f"disabled {user.email}; their sessions and tokens are revoked")


@users.command("enable")
@click.argument("email", type=TEXT)
def users_enable(email: str) -> None:
    """Enable a disabled user again (earlier sessions stay revoked)."""
    user = _user(email)
    user.active = True
    audit.record("user_enabled", "ok", user_id=user.id)
    db.session.commit()
    click.echo(f"enabled {user.email}")


@users.command("reset-password")
@click.argument("email", type=TEXT)
def users_reset_password(email: str) -> None:
    """Set a new one-time password (printed once) and end all the user's sessions."""
    from .signin import session_tokens as jwt_tokens

    user = _user(email)
    passwords = _passwords()
    password = _one_time_password(passwords)
    user.password_hash = passwords.hash(password)
    user.must_change_password = True
    jwt_tokens.revoke_all_for(user)
    from .signin.devices import revoke_all as revoke_devices

    revoke_devices(user, utcnow(), by="operator")
    audit.record("password_reset", "ok", user_id=user.id, by="operator")
    db.session.commit()
    click.echo(f"reset the password of {user.email}; their sessions and tokens are revoked")
    click.echo(f"one-time password: {password}")  # stdout only, never a logger or the audit log
    click.echo(_OTP_NOTE, err=True)


@users.command("rename")
@click.argument("email", type=TEXT)
@click.option("--name", required=True, type=TEXT, help="The new display name: 1 to 120 characters, no control characters.")
def users_rename(email: str, name: str) -> None:
    """Change a user's display name (shown on their pages and in the mails they get)."""
    user = _user(email)
    display_name = _display_name(name) or _fail("--name: give 1 to 120 characters")
    user.display_name = display_name
    audit.record("user_renamed", "ok", user_id=user.id)
    db.session.commit()
    click.echo(f"renamed {user.email}: {display_name}")


@users.command("list")
def users_list() -> None:
    """List users with role, state and groups."""
    rows = [
        [u.email, u.display_name, u.role, "active" if u.active else "disabled",
         ",".join(sorted(g.name for g in u.groups)) or "-", _when(u.created_at)]
        for u in db.session.scalars(select(User).order_by(User.email))
    ]
    _table(["email", "name", "role", "state", "groups", "created (UTC)"], rows)


# --- groups ----------------------------------------------------------------------------------------

groups = AppGroup("groups", help="Groups of recipients (grants can name a group).")


@groups.command("add")
@click.argument("name", type=TEXT)
def groups_add(name: str) -> None:
    """Create a group (a name of 1 to 80 characters, no control characters)."""
    cleaned = _name(name, "group")
    if db.session.scalars(select(Group).where(Group.name == cleaned)).first():
        _fail(f"group {cleaned!r} already exists")
    db.session.add(Group(name=cleaned))
    db.session.commit()
    click.echo(f"added group {cleaned}")


@groups.command("add-member")
@click.argument("group_name", metavar="GROUP", type=TEXT)
@click.argument("email", type=TEXT)
def groups_add_member(group_name: str, email: str) -> None:
    """Add a user to a group."""
    group, user = _group(group_name), _user(email)
    if user in group.members:
        click.echo(f"{user.email} is already in {group.name}")
        return
    group.members.append(user)
    audit.record("group_member_added", "ok", user_id=user.id, group=group.name)
    db.session.commit()
    click.echo(f"added {user.email} to {group.name}")


@groups.command("remove-member")
@click.argument("group_name", metavar="GROUP", type=TEXT)
@click.argument("email", type=TEXT)
def groups_remove_member(group_name: str, email: str) -> None:
    """Remove a user from a group."""
    group, user = _group(group_name), _user(email)
    membership = db.session.get(Membership, (user.id, group.id))
    if membership is None:
        _fail(f"{user.email} is not in group {group.name!r}")
    db.session.delete(membership)
    audit.record("group_member_removed", "ok", user_id=user.id, group=group.name)
    db.session.commit()
    click.echo(f"removed {user.email} from {group.name}")


@groups.command("list")
def groups_list() -> None:
    """List groups and their members."""
    rows = [[g.name, len(g.members), ", ".join(sorted(m.email for m in g.members)) or "-"]
            for g in db.session.scalars(select(Group).order_by(Group.name))]
    _table(["group", "members", "emails"], rows)


# --- grants --------------------------------------------------------------------------------------


def _grant_options(func):
    for option in reversed((
        click.option("--report", "report_slug", metavar="SLUG", type=TEXT, help="Every publication of this report."),
        click.option("--publication", "public_id", metavar="ID", type=TEXT, help="One publication (its id from `publications list`)."),
        click.option("--user", "email", metavar="EMAIL", type=TEXT, help="To this user."),
        click.option("--group", "group_name", metavar="NAME", type=TEXT, help="To this group."),
    )):
        func = option(func)
    return func


def _grant_fields(report_slug, public_id, email, group_name) -> tuple[dict, str]:
    if bool(report_slug) == bool(public_id):
        raise click.UsageError("give exactly one of --report or --publication")
    if bool(email) == bool(group_name):
        raise click.UsageError("give exactly one of --user or --group")
    target = {"report_id": _report(report_slug).id} if report_slug else {"publication_id": _publication(public_id).id}
    subject = {"user_id": _user(email).id} if email else {"group_id": _group(group_name).id}
    label = f"{'report ' + report_slug if report_slug else 'publication ' + public_id} to {'user ' + email if email else 'group ' + group_name}"
    return {**target, **subject}, label


def _find_grant(fields: dict) -> Grant | None:
    stmt = select(Grant)
    for column in ("report_id", "publication_id", "user_id", "group_id"):
        value = fields.get(column)
        stmt = stmt.where(getattr(Grant, column).is_(None) if value is None else getattr(Grant, column) == value)
    return db.session.scalars(stmt).first()


@click.command("grant")
@_grant_options
@with_appcontext
def grant(report_slug, public_id, email, group_name) -> None:
    """Let a user or group read a report (all versions) or one publication."""
    fields, label = _grant_fields(report_slug, public_id, email, group_name)
    if _find_grant(fields):
        click.echo(f"already granted: {label}")
        return
    db.session.add(Grant(**fields))
    audit.record("grant_added", "ok", **fields)
    db.session.commit()
    click.echo(f"granted {label}")


@click.command("revoke-grant")
@_grant_options
@with_appcontext
def revoke_grant(report_slug, public_id, email, group_name) -> None:
    """Remove a grant given with `grant` (same options)."""
    fields, label = _grant_fields(report_slug, public_id, email, group_name)
    found = _find_grant(fields)
    if found is None:
        _fail(f"no such grant: {label}")
    db.session.delete(found)
    audit.record("grant_revoked", "ok", **fields)
    db.session.commit()
    click.echo(f"revoked {label}")


# --- publisher tokens ------------------------------------------------------------------------------

tokens = AppGroup("tokens", help="Publisher tokens the toolkit publishes with.")


@tokens.command("create")
@click.argument("name", type=TEXT)
def tokens_create(name: str) -> None:
    """Create a publisher token named NAME (1 to 80 characters); prints it once (only its hash is stored)."""
    from .publishing import create_publisher_token

    cleaned = _name(name, "token")
    if db.session.scalars(select(PublisherToken).where(PublisherToken.name == cleaned)).first():
        _fail(f"a publisher token named {cleaned!r} already exists")
    row, plaintext = create_publisher_token(cleaned)
    audit.record("publisher_token_created", "ok", name=row.name, prefix=row.prefix)
    db.session.commit()
    click.echo(f"created publisher token {row.name} ({row.prefix}...)")
    click.echo(f"token: {plaintext}")  # stdout only, never a logger or the audit log
    click.echo("Shown once; give it to `nbpress publish` (NBPRESS_PUBLISH_TOKEN or its config file).", err=True)


@tokens.command("revoke")
@click.argument("name", type=TEXT)
def tokens_revoke(name: str) -> None:
    """Revoke a publisher token by name."""
    row = _one(select(PublisherToken).where(PublisherToken.name == name.strip()), f"no publisher token named {name.strip()!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record("publisher_token_revoked", "ok", name=row.name, prefix=row.prefix)
        db.session.commit()
    click.echo(f"revoked publisher token {row.name}")


@tokens.command("list")
def tokens_list() -> None:
    """List publisher tokens (names and prefixes; the tokens themselves are not stored)."""
    rows = [[t.name, t.prefix + "...", _when(t.created_at), _when(t.last_used_at), "revoked " + _when(t.revoked_at) if t.revoked_at else "active"]
            for t in db.session.scalars(select(PublisherToken).order_by(PublisherToken.name))]
    _table(["name", "prefix", "created (UTC)", "last used", "state"], rows)


# --- publications and audit --------------------------------------------------------------------------

publications = AppGroup("publications", help="Published reports.")


@publications.command("list")
@click.option("--report", "report_slug", metavar="SLUG", type=TEXT, help="Only this report.")
def publications_list(report_slug: str | None) -> None:
    """List publications, newest first."""
    stmt = select(Publication).join(Publication.report).order_by(Publication.created_at.desc(), Publication.id.desc())
    if report_slug:
        stmt = stmt.where(Report.id == _report(report_slug).id)
    rows = [[p.public_id, p.report.slug, f"v{p.version}", p.period_label or "-", _when(p.created_at), p.pages, p.size, p.sha256[:12]]
            for p in db.session.scalars(stmt)]
    _table(["id", "report", "version", "period", "published (UTC)", "pages", "bytes", "sha256"], rows)


audit_group = AppGroup("audit", help="The audit log.")


@audit_group.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=50, show_default=True, help="How many events.")
def audit_tail(count: int) -> None:
    """Print the newest audit events, oldest first."""
    stmt = (select(AuditEvent, User.email).outerjoin(User, User.id == AuditEvent.user_id)
            .order_by(AuditEvent.id.desc()).limit(count))
    rows = [[_when(e.at), e.event, e.outcome, email or "-", e.ip or "-", json.dumps(e.detail or {}, sort_keys=True)]
            for e, email in reversed(db.session.execute(stmt).all())]
    _table(["at (UTC)", "event", "outcome", "user", "ip", "detail"], rows)


# --- devices -------------------------------------------------------------------------------------

devices_group = AppGroup("devices", help="A user's trusted devices (sign-in without an emailed code).")


@devices_group.command("list")
@click.argument("email", type=TEXT)
def devices_list(email: str) -> None:
    """List a user's devices: id, name, state, last seen, IPs and MAC status."""
    from .signin.devices import for_user

    rows = [[d.public_id, d.name, "revoked" if d.revoked_at else "trusted", d.client, _when(d.last_seen_at),
             ",".join(d.ips or []) or "-", ",".join(d.macs or []) or d.mac_status]
            for d in for_user(_user(email))]
    _table(["id", "name", "state", "client", "last seen (UTC)", "ips", "mac"], rows)


@devices_group.command("revoke")
@click.argument("email", type=TEXT)
@click.argument("device_id", required=False, type=TEXT)
@click.option("--all", "every", is_flag=True, help="Revoke every device of the user (and end all their sessions).")
def devices_revoke(email: str, device_id: str | None, every: bool) -> None:
    """Revoke one device (its sessions end at once) or, with --all, every device."""
    from .signin.devices import get_for_user, revoke, revoke_all

    user = _user(email)
    if every == bool(device_id):
        _fail("give a device id or --all (not both)")
    if every:
        count = revoke_all(user, utcnow(), by="operator")
        db.session.commit()
        click.echo(f"revoked {count} device(s) of {user.email}; their sessions and tokens are revoked")
        return
    device = get_for_user(user, device_id) or _fail(f"no device {device_id!r} for {user.email}")
    revoke(device, utcnow(), by="operator")
    db.session.commit()
    click.echo(f"revoked device {device.public_id} ({device.name}) of {user.email}")


# --- the entry `nbpress portal` runs -----------------------------------------------------------


def _create_app_or_fail() -> Flask:
    from .app import create_app
    from .errors import ConfigError

    try:
        return create_app()
    except ConfigError as exc:  # one line, not a traceback (click prints "Error: ...", exit 1)
        raise click.ClickException(str(exc)) from None


class _PortalGroup(FlaskGroup):
    """FlaskGroup whose `--help` says in one line why the app's own commands are missing
    (Flask prints the whole traceback of a failed app load there)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        names = set(click.Group.list_commands(self, ctx))
        try:
            names.update(ctx.ensure_object(ScriptInfo).load_app().cli.list_commands(ctx))
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()} (the commands below need it)\n", err=True)
        return sorted(names)


# `flask --app publish_server` plus a `serve` that is found before the app is built.
main = _PortalGroup(name="portal", create_app=_create_app_or_fail, add_version_option=False, load_dotenv=False,
                  help="Notebook Press portal commands (the same as `flask --app publish_server ...`).")
main.params = [p for p in main.params if p.name != "app"]  # the app is fixed: publish_server


@main.command("serve", with_appcontext=False)
@click.option("--dev", is_flag=True, help="Generate development secrets in the instance folder once (plain HTTP cookies).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def serve(dev: bool, host: str, port: int) -> None:
    """Upgrade the database and run the development server (production: gunicorn)."""
    from flask_migrate import upgrade

    from .hosts import normal_host, parse_trusted_hosts
    from .settings import write_dev_secrets

    if dev:
        instance = Path(os.environ.get("NBPRESS_INSTANCE") or Path.cwd() / "instance").resolve()
        click.echo(f"development secrets: {write_dev_secrets(instance)}", err=True)
    app = _create_app_or_fail()
    with app.app_context():
        upgrade()
    click.echo(f"Notebook Press portal on http://{host}:{port}/ (development server; Ctrl-C stops it)", err=True)
    trusted = parse_trusted_hosts(app.config["NBPRESS"]["TRUSTED_HOSTS"])
    if normal_host(host) not in trusted:  # e.g. --host 0.0.0.0: other machines' requests name other hosts
        click.echo(f"note: only requests for {', '.join(sorted(trusted))} are answered; "
                   "set NBPRESS_TRUSTED_HOSTS to the names clients use", err=True)
    from werkzeug.serving import run_simple  # app.run() refuses to start under the flask CLI

    # Never the Werkzeug debugger: it executes code for whoever reaches it.
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":  # pragma: no cover - exercised through `nbpress portal serve`
    from publish_server.admin import main as _main  # the package's copy, not this __main__ one

    _main(prog_name="nbpress portal")
