"""Trusted devices: which browser or API client may skip the emailed code, and when it may not.

A device is known by a random secret (256 bits; the browser keeps it in a cookie, an API client
as ``device_token``) whose SHA-256 is stored. :func:`check` decides, after a correct password,
whether that device still counts: it must belong to the user, be neither revoked nor past its
``trusted_until``, its IP must pass the IP policy (``DEVICE_IP_POLICY``: exact address, same
network prefix, or off) and, when the server can read the client's MAC address, that MAC must
be one recorded for the device. Anything else needs a code. Services here never touch
``request``; times come from the caller (an injected clock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..errors import BadRequest
from ..extensions import db
from ..models import Device, User
from . import session_tokens
from .mac_addresses import MacReading
from ..text import first_control

__all__ = ["Verdict", "check", "find", "trust", "hash_secret", "ip_allowed", "for_user", "get_for_user",
           "rename", "revoke", "revoke_all"]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    device: Device | None  # the user's device named by the secret, trusted or not
    reason: str | None  # None: trusted, no code needed; else why a code is needed

    @property
    def trusted(self) -> bool:
        return self.reason is None


def _same_network(a: str, b: str, v4: int, v6: int) -> bool:
    try:
        first, second = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return False
    if first.version != second.version:
        return False
    prefix = v4 if first.version == 4 else v6
    return second in ipaddress.ip_network(f"{first}/{prefix}", strict=False)


def ip_allowed(known: list[str], ip: str, settings: dict) -> bool:
    """Does ``ip`` pass the IP policy for a device verified from the ``known`` addresses?"""
    policy = settings["DEVICE_IP_POLICY"]
    if policy == "off":
        return True
    if policy == "exact":
        return ip in known
    return any(_same_network(seen, ip, settings["DEVICE_IPV4_PREFIX"], settings["DEVICE_IPV6_PREFIX"]) for seen in known)


def find(secret: object) -> Device | None:
    """The device with this secret, whoever it belongs to (None for anything malformed)."""
    if not isinstance(secret, str) or not 20 <= len(secret) <= 100:
        return None
    return db.session.scalars(db.select(Device).where(Device.secret_hash == hash_secret(secret))).first()


def _find(user: User, secret: object) -> Device | None:
    device = find(secret)
    return device if device is not None and device.user_id == user.id else None


def check(user: User, secret: object, ip: str, mac: MacReading, now: dt.datetime) -> Verdict:
    """May this device skip the code? Records nothing but ``last_seen`` of a trusted device."""
    settings = current_app.config["NBPRESS"]
    device = _find(user, secret)
    if device is None:
        return Verdict(None, "new_device")
    if device.revoked_at is not None:
        return Verdict(None, "revoked_device")
    if device.trusted_until <= now:
        return Verdict(device, "device_expired")
    if not ip_allowed(list(device.ips or []), ip, settings):
        return Verdict(device, "new_ip")
    if settings["DEVICE_MAC_CHECK"] and mac.known and mac.mac not in (device.macs or []):
        return Verdict(device, "new_mac")
    device.last_seen_at = now
    device.last_ip = ip
    return Verdict(device, None)


def _name_from(user_agent: str) -> str:
    agent = user_agent or ""
    browser = next((b for b in ("Firefox", "Edg", "Chrome", "Safari", "curl", "python-requests") if b in agent), "")
    system = next((s for s in ("Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux") if s in agent), "")
    label = " on ".join(p for p in ({"Edg": "Edge"}.get(browser, browser), system) if p)
    return (label or "Unnamed device")[:80]


def trust(user: User, device: Device | None, *, client: str, ip: str, mac: MacReading, user_agent: str,
          now: dt.datetime) -> tuple[Device, str]:
    """After a correct code: create or extend the device; returns it and its new secret.

    The secret is replaced every time, so a copied old cookie stops working after the next
    verification.
    """
    secret = secrets.token_urlsafe(32)
    days = current_app.config["NBPRESS"]["DEVICE_DAYS"]
    if device is None:
        device = Device(user_id=user.id, client=client, name=_name_from(user_agent), first_seen_at=now, ips=[], macs=[])
        db.session.add(device)
    device.secret_hash = hash_secret(secret)
    device.user_agent = (user_agent or "")[:300]
    device.last_seen_at = now
    device.last_ip = ip
    device.trusted_until = now + dt.timedelta(days=days)
    if ip and ip not in (device.ips or []):
        device.ips = [*(device.ips or []), ip][-20:]
    if mac.known and mac.mac not in (device.macs or []):
        device.macs = [*(device.macs or []), mac.mac][-10:]
    device.mac_status = mac.status
    db.session.flush()
    return device, secret


def for_user(user: User) -> list[Device]:
    stmt = db.select(Device).where(Device.user_id == user.id).order_by(Device.revoked_at.is_not(None), Device.last_seen_at.desc())
    return list(db.session.scalars(stmt))


def get_for_user(user: User, public_id: str) -> Device | None:
    return db.session.scalars(db.select(Device).where(Device.user_id == user.id, Device.public_id == public_id)).first()


def rename(device: Device, name: str) -> None:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 80:
        raise BadRequest("A device name has 1 to 80 characters.")
    if first_control(cleaned) is not None:
        raise BadRequest("A device name is printable text (no control characters).")
    device.name = cleaned


def revoke(device: Device, now: dt.datetime, *, by: str = "user") -> None:
    """The device needs a code again, and sessions it started end at once (see :mod:`session_tokens`)."""
    if device.revoked_at is None:
        device.revoked_at = now
        audit.record("device.revoke", "ok", user_id=device.user_id, device=device.public_id, by=by)


def revoke_all(user: User, now: dt.datetime, *, keep: Device | None = None, by: str = "user") -> int:
    count = 0
    for device in for_user(user):
        if device.revoked_at is None and (keep is None or device.id != keep.id):
            revoke(device, now, by=by)
            count += 1
    if keep is None:
        session_tokens.revoke_all_for(user)
    return count

