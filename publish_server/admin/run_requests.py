"""``run-requests``: the run requests recipients made on the portal, newest first."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..models import Report, RunRequest, User
from ..extensions import db
from ..report_runs.claims import sweep
from .common import TEXT, find_report, print_table, when

__all__ = ["run_requests"]

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")


@click.command("run-requests")
@click.option("--report", "report_slug", metavar="SLUG", type=TEXT, help="Only this report's requests.")
@click.option("--status", type=click.Choice(STATUSES), help="Only requests in this state.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="At most this many (newest first).")
@with_appcontext
def run_requests(report_slug: str | None, status: str | None, limit: int) -> None:
    """List run requests: report, requester, state, stage, tries, times, error line.

    Lapsed leases and expired requests are swept first, so no request a worker left is listed running."""
    sweep()
    stmt = (select(RunRequest, Report.slug, User.email).join(Report, Report.id == RunRequest.report_id)
            .join(User, User.id == RunRequest.user_id).order_by(RunRequest.created_at.desc(), RunRequest.id.desc()).limit(limit))
    if report_slug:
        stmt = stmt.where(RunRequest.report_id == find_report(report_slug).id)
    if status:
        stmt = stmt.where(RunRequest.status == status)
    rows = [[r.public_id, slug, email, r.status + (" (cancel asked)" if r.cancel_requested and r.status == "running" else ""),
             r.stage or "-", r.attempts, when(r.created_at), when(r.finished_at), r.lease_owner or "-", (r.error_line or "-")[:80]]
            for r, slug, email in db.session.execute(stmt)]
    print_table(["id", "report", "requested by", "status", "stage", "tries", "created (UTC)", "ended (UTC)", "worker", "error"], rows)
