"""``devices``: list and revoke a user's trusted devices."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extensions import db
from ..models import utcnow
from ..signin.devices import for_user, get_for_user, revoke, revoke_all
from .common import TEXT, fail, find_user, print_table, when

__all__ = ["devices_group"]

devices_group = AppGroup("devices", help="A user's trusted devices (sign-in without an emailed code).")


@devices_group.command("list")
@click.argument("email", type=TEXT)
def devices_list(email: str) -> None:
    """List a user's devices: id, name, state, last seen, IPs and MAC status."""
    rows = [[d.public_id, d.name, "revoked" if d.revoked_at else "trusted", d.client, when(d.last_seen_at),
             ",".join(d.ips or []) or "-", ",".join(d.macs or []) or d.mac_status]
            for d in for_user(find_user(email))]
    print_table(["id", "name", "state", "client", "last seen (UTC)", "ips", "mac"], rows)


@devices_group.command("revoke")
@click.argument("email", type=TEXT)
@click.argument("device_id", required=False, type=TEXT)
@click.option("--all", "every", is_flag=True, help="Revoke every device of the user (and end all their sessions).")
def devices_revoke(email: str, device_id: str | None, every: bool) -> None:
    """Revoke one device (its sessions end at once) or, with --all, every device."""
    user = find_user(email)
    if every == bool(device_id):
        fail("give a device id or --all (not both)")
    if every:
        count = revoke_all(user, utcnow(), by="operator")
        db.session.commit()
        click.echo(f"revoked {count} device(s) of {user.email}; their sessions and tokens are revoked")
        return
    device = get_for_user(user, device_id) or fail(f"no device {device_id!r} for {user.email}")
    revoke(device, utcnow(), by="operator")
    db.session.commit()
    click.echo(f"revoked device {device.public_id} ({device.name}) of {user.email}")
