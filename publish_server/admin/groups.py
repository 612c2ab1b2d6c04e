"""``groups`` (add, add-member, remove-member, list), and ``grant`` / ``revoke-grant`` / ``grants``."""

from __future__ import annotations

import re

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import or_, select

from .. import audit
from ..extensions import db
from ..models import Grant, Group, Membership, Publication, Report, User
from ..publishing import REPORT_SLUG
from ..variants import LABEL_MAX
from .common import TEXT, checked_name, fail, find_group, find_publication, find_report, find_user, print_table
from .run_grants import add_run_grant, revoke_run_grant, run_grant_rows

__all__ = ["groups", "grant", "revoke_grant", "grants_list", "GRANT_RULE"]

GRANT_RULE = (
    "A report grant covers every variant and version of the report, past and future, including "
    "versions published with an audience of their own; a variant grant (--report with --variant) "
    "covers every version of that one variant; a publication grant adds that one publication."
)

groups = AppGroup("groups", help="Groups of recipients (grants can name a group).")


@groups.command("add")
@click.argument("name", type=TEXT)
def groups_add(name: str) -> None:
    """Create a group (a name of 1 to 80 characters, no control characters)."""
    cleaned = checked_name(name, "group")
    if db.session.scalars(select(Group).where(Group.name == cleaned)).first():
        fail(f"group {cleaned!r} already exists")
    db.session.add(Group(name=cleaned))
    db.session.commit()
    click.echo(f"added group {cleaned}")


@groups.command("add-member")
@click.argument("group_name", metavar="GROUP", type=TEXT)
@click.argument("email", type=TEXT)
def groups_add_member(group_name: str, email: str) -> None:
    """Add a user to a group."""
    group, user = find_group(group_name), find_user(email)
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
    group, user = find_group(group_name), find_user(email)
    membership = db.session.get(Membership, (user.id, group.id))
    if membership is None:
        fail(f"{user.email} is not in group {group.name!r}")
    db.session.delete(membership)
    audit.record("group_member_removed", "ok", user_id=user.id, group=group.name)
    db.session.commit()
    click.echo(f"removed {user.email} from {group.name}")


@groups.command("list")
def groups_list() -> None:
    """List groups and their members."""
    rows = [[g.name, len(g.members), ", ".join(sorted(m.email for m in g.members)) or "-"]
            for g in db.session.scalars(select(Group).order_by(Group.name))]
    print_table(["group", "members", "emails"], rows)


# --- grants --------------------------------------------------------------------------------------


def _grant_options(func):
    for option in reversed((
        click.option("--report", "report_slug", metavar="SLUG", type=TEXT,
                     help="Every variant and version of this report, past and future, whatever audience it was published "
                          "with (`grant` creates a report not published yet, empty)."),
        click.option("--variant", metavar="LABEL", type=TEXT,
                     help='With --report: only this variant, every version of it (its label as listed, e.g. "north").'),
        click.option("--publication", "public_id", metavar="ID", type=TEXT,
                     help="Adds this one publication (its id from `publications list`)."),
        click.option("--user", "email", metavar="EMAIL", type=TEXT, help="To this user."),
        click.option("--group", "group_name", metavar="NAME", type=TEXT, help="To this group."),
        click.option("--run", "run", is_flag=True,
                     help="With --report: the right to ask for runs of the report on the portal (a run grant; `grant --run` "
                          "adds the read grant too when missing, `revoke-grant --run` removes only the run grant)."),
    )):
        func = option(func)
    return func


def _report_to_grant(slug: str) -> Report:
    """The report, created empty when nothing was published yet: an operator grants before the
    first publication (README). Its first publication gives it its title and description."""
    found = db.session.scalars(select(Report).where(Report.slug == slug)).first()
    if found is not None:
        return found
    if not re.fullmatch(REPORT_SLUG, slug):
        fail(f"not a report slug: {slug!r} (letters, digits, '_', '.', '-'; as in the report's spec file name)")
    report = Report(slug=slug, title="", description="")  # no title yet: the first publication's (publishing.py)
    db.session.add(report)
    db.session.flush()
    audit.record("report_created", "ok", report=slug, by="grant")
    click.echo(f"note: report {slug} is not published yet; created it empty, its first publication fills it in", err=True)
    return report


def _run_grant_fields(report_slug, variant, public_id, email, group_name) -> tuple[dict, str]:
    if not report_slug or variant is not None or public_id:
        raise click.UsageError("--run goes with --report alone (runs are granted per report, not per variant or publication)")
    if bool(email) == bool(group_name):
        raise click.UsageError("give exactly one of --user or --group")
    subject = {"user_id": find_user(email).id} if email else {"group_id": find_group(group_name).id}
    return subject, f"runs of report {report_slug} to {'user ' + email if email else 'group ' + group_name}"


def _grant_fields(report_slug, variant, public_id, email, group_name, *, create_report: bool = False) -> tuple[dict, str]:
    if bool(report_slug) == bool(public_id):
        raise click.UsageError("give exactly one of --report or --publication")
    if variant is not None and not report_slug:
        raise click.UsageError("--variant goes with --report (a publication has one variant already)")
    variant = None if variant is None else " ".join(variant.split())
    if variant is not None and not 1 <= len(variant) <= LABEL_MAX:
        raise click.UsageError(f"--variant: a label has 1 to {LABEL_MAX} characters")
    if bool(email) == bool(group_name):
        raise click.UsageError("give exactly one of --user or --group")
    subject = {"user_id": find_user(email).id} if email else {"group_id": find_group(group_name).id}  # before a report is created
    if report_slug:
        target = {"report_id": (_report_to_grant(report_slug) if create_report else find_report(report_slug)).id}
        if variant:
            target["variant"] = variant
    else:
        target = {"publication_id": find_publication(public_id).id}
    what = f"report {report_slug}" + (f" variant {variant}" if variant else "") if report_slug else f"publication {public_id}"
    label = f"{what} to {'user ' + email if email else 'group ' + group_name}"
    return {**target, **subject}, label


def _find_grants(fields: dict) -> list[Grant]:
    """Every row of this grant: the unique constraint cannot hold rows with NULLs apart, so two
    publishers racing to create one variant grant may both have stored it."""
    stmt = select(Grant)
    for column in ("report_id", "variant", "publication_id", "user_id", "group_id"):
        value = fields.get(column)
        stmt = stmt.where(getattr(Grant, column).is_(None) if value is None else getattr(Grant, column) == value)
    return list(db.session.scalars(stmt))


@click.command("grant", help=f"Let a user or group read a report, one variant of it, or one publication; with --run, "
                             f"ask for runs of a report (and read it).\n\n{GRANT_RULE}")
@_grant_options
@with_appcontext
def grant(report_slug, variant, public_id, email, group_name, run) -> None:
    if run:
        subject, label = _run_grant_fields(report_slug, variant, public_id, email, group_name)
        added_run, added_read = add_run_grant(_report_to_grant(report_slug), subject)
        db.session.commit()
        click.echo(("granted " if added_run else "already granted: ") + label + (" (and reading it)" if added_read else ""))
        return
    fields, label = _grant_fields(report_slug, variant, public_id, email, group_name, create_report=True)
    if _find_grants(fields):
        click.echo(f"already granted: {label}")
        return
    db.session.add(Grant(**fields))
    audit.record("grant_added", "ok", **fields)
    db.session.commit()
    click.echo(f"granted {label}")


@click.command("revoke-grant")
@_grant_options
@with_appcontext
def revoke_grant(report_slug, variant, public_id, email, group_name, run) -> None:
    """Remove a grant given with `grant` (same options): a report grant, a variant grant
    (--report with --variant), a publication grant, or with --run a run grant (reading stays)."""
    if run:
        subject, label = _run_grant_fields(report_slug, variant, public_id, email, group_name)
        if not revoke_run_grant(find_report(report_slug), subject):
            fail(f"no such grant: {label}")
        db.session.commit()
        click.echo(f"revoked {label} (reading it stays)")
        return
    fields, label = _grant_fields(report_slug, variant, public_id, email, group_name)
    found = _find_grants(fields)
    if not found:
        fail(f"no such grant: {label}")
    for row in found:
        db.session.delete(row)
    audit.record("grant_revoked", "ok", **fields)
    db.session.commit()
    click.echo(f"revoked {label}")


@click.command("grants")
@click.option("--report", "report_slug", metavar="SLUG", type=TEXT, help="Only this report's grants (and its publications').")
@with_appcontext
def grants_list(report_slug: str | None) -> None:
    """List grants: what (report, variant, publication, or runs of a report) to whom."""
    stmt = select(Grant).order_by(Grant.report_id, Grant.variant, Grant.publication_id, Grant.id)
    if report_slug:
        report = find_report(report_slug)
        stmt = stmt.where(or_(Grant.report_id == report.id,
                              Grant.publication_id.in_(select(Publication.id).where(Publication.report_id == report.id))))
    rows = []
    for g in db.session.scalars(stmt):
        publication = db.session.get(Publication, g.publication_id) if g.publication_id else None
        report = db.session.get(Report, g.report_id) if g.report_id else publication.report
        what = "publication " + publication.public_id if publication else ("variant" if g.variant else "report")
        subject = "user " + db.session.get(User, g.user_id).email if g.user_id else "group " + db.session.get(Group, g.group_id).name
        rows.append([report.slug, g.variant or ("-" if publication is None else publication.variant_label or "-"), what, subject])
    rows += run_grant_rows(find_report(report_slug) if report_slug else None)
    print_table(["report", "variant", "grant", "to"], rows)
