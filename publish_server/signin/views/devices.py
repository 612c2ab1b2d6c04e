"""The devices page: a user's trusted devices, to rename and revoke (blueprint ``devices``).

Thin views over :mod:`devices`. Revoking a device ends the sessions started on it at once
(their tokens carry the device id, checked on every request, see :mod:`session_tokens`);
revoking the device this browser uses signs it out.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_jwt_extended import get_current_user, get_jwt

from ...errors import NotFound
from ...extensions import db
from .. import devices
from ..clock import now
from ..session import login_required_page

bp = Blueprint("devices", __name__, url_prefix="/account/devices")

_NOTICES = {"renamed": "The device has been renamed.", "revoked": "The device has been revoked.",
            "others": "Every other device has been revoked."}


def _current_device_id() -> str | None:
    return get_jwt().get("did")


def _mine(public_id: str):
    device = devices.get_for_user(get_current_user(), public_id)
    if device is None:
        raise NotFound()  # someone else's device looks exactly like a missing one
    return device


@bp.get("")
@login_required_page
def index():
    user = get_current_user()
    return render_template("devices.html", user=user, devices=devices.for_user(user), current=_current_device_id(),
                           notice=_NOTICES.get(request.args.get("done", "")))


@bp.post("/<public_id>/rename")
@login_required_page
def rename(public_id: str):
    devices.rename(_mine(public_id), request.form.get("name", ""))
    db.session.commit()
    return redirect(url_for("devices.index", done="renamed"), code=303)


@bp.post("/<public_id>/revoke")
@login_required_page
def revoke(public_id: str):
    device = _mine(public_id)
    devices.revoke(device, now())
    db.session.commit()
    if device.public_id == _current_device_id():
        return redirect(url_for("auth.login_form"), code=303)  # this browser's session has just ended
    return redirect(url_for("devices.index", done="revoked"), code=303)


@bp.post("/revoke-others")
@login_required_page
def revoke_others():
    user = get_current_user()
    current = _current_device_id()
    keep = devices.get_for_user(user, current) if current else None
    for device in devices.for_user(user):
        if keep is None or device.id != keep.id:
            devices.revoke(device, now())  # sessions started on them end with them
    db.session.commit()
    return redirect(url_for("devices.index", done="others"), code=303)
