"""``tokens`` (publisher tokens: create, revoke, list) and ``publications list``."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..models import Publication, PublisherToken, Report, utcnow
from ..publishing import create_publisher_token
from .common import TEXT, checked_name, fail, find_report, one, print_table, when

__all__ = ["tokens", "publications"]

tokens = AppGroup("tokens", help="Publisher tokens the toolkit publishes with.")


@tokens.command("create")
@click.argument("name", type=TEXT)
def tokens_create(name: str) -> None:
    """Create a publisher token named NAME (1 to 80 characters); prints it once (only its hash is stored)."""
    cleaned = checked_name(name, "token")
    if db.session.scalars(select(PublisherToken).where(PublisherToken.name == cleaned)).first():
        fail(f"a publisher token named {cleaned!r} already exists")
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
    row = one(select(PublisherToken).where(PublisherToken.name == name.strip()), f"no publisher token named {name.strip()!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record("publisher_token_revoked", "ok", name=row.name, prefix=row.prefix)
        db.session.commit()
    click.echo(f"revoked publisher token {row.name}")


@tokens.command("list")
def tokens_list() -> None:
    """List publisher tokens (names and prefixes; the tokens themselves are not stored)."""
    rows = [[t.name, t.prefix + "...", when(t.created_at), when(t.last_used_at), "revoked " + when(t.revoked_at) if t.revoked_at else "active"]
            for t in db.session.scalars(select(PublisherToken).order_by(PublisherToken.name))]
    print_table(["name", "prefix", "created (UTC)", "last used", "state"], rows)


# --- publications and audit --------------------------------------------------------------------------

publications = AppGroup("publications", help="Published reports.")


@publications.command("list")
@click.option("--report", "report_slug", metavar="SLUG", type=TEXT, help="Only this report.")
def publications_list(report_slug: str | None) -> None:
    """List publications, newest first."""
    stmt = select(Publication).join(Publication.report).order_by(Publication.created_at.desc(), Publication.id.desc())
    if report_slug:
        stmt = stmt.where(Report.id == find_report(report_slug).id)
    rows = [[p.public_id, p.report.slug, f"v{p.version}", p.period_label or "-", when(p.created_at), p.pages, p.size, p.sha256[:12]]
            for p in db.session.scalars(stmt)]
    print_table(["id", "report", "version", "period", "published (UTC)", "pages", "bytes", "sha256"], rows)
