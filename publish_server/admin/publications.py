"""``tokens`` (publisher tokens: create, revoke, list) and ``publications`` (list, withdraw, prune)."""

from __future__ import annotations

import re

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .. import audit, retention, sweep, withdrawal
from ..errors import BadRequest, StorageUnavailable
from ..extensions import db
from ..models import Publication, PublisherToken, Report, utcnow
from ..publishing import create_publisher_token
from ..storage import store_for
from .common import TEXT, checked_name, fail, find_publication, find_report, one, print_table, when

__all__ = ["tokens", "publications"]

tokens = AppGroup("tokens", help="Publisher tokens the toolkit publishes with.")


_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


@tokens.command("create")
@click.argument("name", type=TEXT)
@click.option("--project", metavar="PROJECT", type=TEXT,
              help="The project it acts for: it publishes, describes and runs only that project's reports (a report "
                   "nobody's yet becomes the project's when the token first acts on it). Without: every report.")
def tokens_create(name: str, project: str | None) -> None:
    """Create a publisher token named NAME (1 to 80 characters); prints it once (only its hash is stored).
    `tokens add` is the same command."""
    cleaned = checked_name(name, "token")
    if project is not None and not _PROJECT.fullmatch(project):
        fail(f"--project: a project name is a letter or digit, then letters, digits, '_', '.', '-' (at most 80): {project!r}")
    if db.session.scalars(select(PublisherToken).where(PublisherToken.name == cleaned)).first():
        fail(f"a publisher token named {cleaned!r} already exists")
    row, plaintext = create_publisher_token(cleaned)
    row.project = project
    audit.record("publisher_token_created", "ok", name=row.name, prefix=row.prefix, project=project)
    db.session.commit()
    click.echo(f"created publisher token {row.name} ({row.prefix}...)" + (f" for project {project}" if project else ""))
    click.echo(f"token: {plaintext}")  # stdout only, never a logger or the audit log
    click.echo("Shown once; give it to `nbpress publish` (NBPRESS_PUBLISH_TOKEN or its config file).", err=True)


tokens.add_command(tokens_create, "add")


@tokens.command("set-project")
@click.argument("name", type=TEXT)
@click.argument("project", type=TEXT)
def tokens_set_project(name: str, project: str) -> None:
    """Limit publisher token NAME (e.g. one made before projects) to PROJECT's reports from now on,
    without issuing a new token."""
    row = one(select(PublisherToken).where(PublisherToken.name == name.strip()), f"no publisher token named {name.strip()!r}")
    if not _PROJECT.fullmatch(project):
        fail(f"a project name is a letter or digit, then letters, digits, '_', '.', '-' (at most 80): {project!r}")
    before, row.project = row.project, project
    audit.record("publisher_token_project_set", "ok", name=row.name, prefix=row.prefix, before=before, project=project)
    db.session.commit()
    click.echo(f"publisher token {row.name} acts for project {project} (before: {before or 'every report'})")


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
    """List publisher tokens (names, prefixes, projects; the tokens themselves are not stored)."""
    rows = [[t.name, t.prefix + "...", t.project or "(every report)", when(t.created_at), when(t.last_used_at),
             "revoked " + when(t.revoked_at) if t.revoked_at else "active"]
            for t in db.session.scalars(select(PublisherToken).order_by(PublisherToken.name))]
    print_table(["name", "prefix", "project", "created (UTC)", "last used", "state"], rows)


# --- publications and audit --------------------------------------------------------------------------

publications = AppGroup("publications", help="Published reports.")


@publications.command("list")
@click.option("--report", "report_slug", metavar="SLUG", type=TEXT, help="Only this report.")
def publications_list(report_slug: str | None) -> None:
    """List publications, newest first."""
    stmt = select(Publication).join(Publication.report).order_by(Publication.created_at.desc(), Publication.id.desc())
    if report_slug:
        stmt = stmt.where(Report.id == find_report(report_slug).id)
    rows = [[p.public_id, p.report.slug, p.variant_label or "-", f"v{p.version}", p.period_label or "-", when(p.created_at), p.pages, p.size, p.sha256[:12],
             f"withdrawn {when(p.withdrawn_at)}" if p.withdrawn_at else "published"]
            for p in db.session.scalars(stmt)]
    print_table(["id", "report", "variant", "version", "period", "published (UTC)", "pages", "bytes", "sha256", "state"], rows)


@publications.command("withdraw")
@click.argument("public_id", metavar="ID", type=TEXT)
@click.option("--reason", required=True, type=TEXT, help="Why (1 to 500 characters); readers see it with the 410 answer.")
def publications_withdraw(public_id: str, reason: str) -> None:
    """Withdraw publication ID: readers get 410 Gone with REASON, the file is no longer served.

    The row and its audit trail stay; withdrawing again keeps the first reason."""
    publication = find_publication(public_id.strip())
    try:
        changed = withdrawal.withdraw(publication, reason, by="operator")
    except BadRequest as exc:
        fail(exc.message)
    db.session.commit()
    state = "withdrew" if changed else "already withdrawn:"
    click.echo(f"{state} {publication.report.slug} {publication.variant_label + ' ' if publication.variant_label else ''}v{publication.version} ({publication.public_id}): {publication.withdrawn_reason}")


@publications.command("prune")
@click.option("--keep", type=click.IntRange(1), required=True, metavar="N", help="Versions to keep per report, variant and period (newest).")
@click.option("--yes", is_flag=True, help="Remove them; without it, only print what would go.")
def publications_prune(keep: int, yes: bool) -> None:
    """Keep the newest N versions of each report, variant and period; remove older rows, then files no row
    references, and sweep crash leftovers (NBPRESS_SWEEP_AGE_SECONDS old). A dry run unless --yes."""
    files_dir, age = current_app.config["FILES_DIR"], current_app.config["NBPRESS"]["SWEEP_AGE_SECONDS"]
    store = store_for(current_app)
    try:
        plan = retention.plan_prune(keep, store)
        verb = "removed" if yes else "would remove"
        for p in plan.publications:
            click.echo(f"{verb} publication {p.report.slug} {p.variant_label + ' ' if p.variant_label else ''}{p.period_label or '-'} v{p.version} ({p.public_id})")
        for sha256 in plan.files:
            click.echo(f"{verb} file {sha256}.pdf")
        if yes:
            retention.apply_prune(plan, store)
        leftovers = [path.name for path in sweep.sweep(files_dir, min_age_seconds=age, dry_run=not yes)]
        if "nbpress.objects" in current_app.extensions:  # FILES_URL: the bucket's leftovers too
            leftovers += sweep.sweep_objects(store, sweep.referenced_hashes, min_age_seconds=age, dry_run=not yes)
    except StorageUnavailable:
        fail(f"the object store {store.describe()} failed (see the log line above); nothing more was removed")
    for name in leftovers:
        click.echo(f"{verb} leftover {name}")
    summary = f"{len(plan.publications)} publications, {len(plan.files)} files, {len(leftovers)} leftovers"
    click.echo(f"{verb} {summary}" + ("" if yes else "; run again with --yes to remove them"))
