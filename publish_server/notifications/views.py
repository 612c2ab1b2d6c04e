"""The notification preferences form (account page) and one-click unsubscribe (blueprint ``notifications``).

``/unsubscribe/<token>`` needs no sign-in: GET only shows a confirmation with a button (link
scanners follow GETs), POST (a person's click, or a mail client's RFC 8058 one-click with the
body ``List-Unsubscribe=One-Click``) sets the token's reports to ``none`` and nothing else. A
tampered token answers 404. Both are rate limited per client IP like the other anonymous forms.
The preferences form is a cookie-authenticated POST with the page's CSRF value.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_jwt_extended import get_current_user

from .. import audit
from ..errors import BadRequest
from ..extensions import db, limiter
from ..signin.code_challenges import masked_address
from ..signin.session import login_required_page
from . import preferences, unsubscribe as one_click

__all__ = ["bp"]

bp = Blueprint("notifications", __name__)

ANONYMOUS_RATE = "30 per minute"  # per client IP


@bp.app_template_global("notification_choices")
def _notification_choices(user):
    """For the account page: each readable report with its mode, and the labels."""
    return preferences.choices(user), preferences.MODE_LABELS


@bp.post("/account/notifications")
@login_required_page
def save_preferences():
    user = get_current_user()
    changed = []
    for choice in preferences.choices(user):  # only reports the user can read; other fields are ignored
        mode = request.form.get(f"mode-{choice.report.id}", choice.mode)
        if mode not in preferences.MODES:
            raise BadRequest("Choose each publication, daily digest or none.")
        if mode != choice.mode:
            preferences.set_mode(user.id, choice.report.id, mode)
            changed.append(f"{choice.report.slug}={mode}")
    if changed:
        audit.record("notifications_changed", "ok", user_id=user.id, via="account", modes=changed)
    db.session.commit()
    return redirect(url_for("auth.account", reason="notifications") + "#notifications", code=303)


@bp.get("/unsubscribe/<token>")
@limiter.limit(ANONYMOUS_RATE)
def unsubscribe_confirm(token: str):
    target = one_click.resolve(token)
    return render_template("unsubscribe.html", target=target, token=token, done=False,
                           address=masked_address(target.user.email))  # whoever holds the link learns no more


@bp.post("/unsubscribe/<token>", endpoint="unsubscribe")
@limiter.limit(ANONYMOUS_RATE)
def unsubscribe_submit(token: str):
    target = one_click.resolve(token)
    one_click.apply(target)
    return render_template("unsubscribe.html", target=target, token=token, done=True,
                           address=masked_address(target.user.email))
