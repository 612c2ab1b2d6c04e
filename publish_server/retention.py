"""``publications prune``: keep the newest N versions of each report, variant and period, remove the rest.

A version is a re-publication of the same report, variant and period; the newest N by
version number stay, withdrawn ones counted like the others (so a withdrawal is not undone by
pruning what replaced it). Rows go with their grants (ON DELETE CASCADE); audit rows are never
touched, and each removal adds one. A file goes only when no remaining row references it (the
store is content-addressed: two versions may share one file), checked again right before it goes;
in object storage too (``FILES_URL``).
No ``request`` in here; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import delete, select

from . import audit
from .extensions import db
from .models import Publication, Report
from .storage import Store

__all__ = ["Plan", "plan_prune", "apply_prune"]


@dataclass(frozen=True)
class Plan:
    publications: list[Publication]  # rows to remove, by report, period and version
    files: list[str]  # SHA-256 of stored files that no kept row references


def plan_prune(keep: int, store: Store) -> Plan:
    """What pruning to ``keep`` versions per report, variant and period would remove (nothing changed)."""
    rows = db.session.scalars(
        select(Publication).join(Publication.report)
        .order_by(Report.slug, Publication.variant_label, Publication.period_label, Publication.version.desc())
    ).all()
    doomed: list[Publication] = []
    for _key, versions in groupby(rows, key=lambda p: (p.report_id, p.variant_label, p.period_label)):
        doomed += list(versions)[keep:]
    doomed_ids = {p.id for p in doomed}
    kept_hashes = {p.sha256 for p in rows if p.id not in doomed_ids}  # rows are every publication
    files = sorted({p.sha256 for p in doomed if p.sha256 not in kept_hashes and store.has(p.sha256)})
    return Plan(doomed, files)


def apply_prune(plan: Plan, store: Store) -> None:
    """Delete the planned rows (one audit row each) and then their files. Commits the rows first:
    a crash between the two leaves files no row references, which the next sweep removes. A file
    a publication took up again since the plan (same content re-published) stays."""
    for publication in plan.publications:
        audit.record("publication_pruned", "ok", publication=publication.public_id, report=publication.report.slug,
                     version=publication.version, variant=publication.variant_label, period=publication.period_label, sha256=publication.sha256)
    ids = [p.id for p in plan.publications]
    if ids:
        db.session.execute(delete(Publication).where(Publication.id.in_(ids)).execution_options(synchronize_session=False))
    db.session.commit()
    referenced = set(db.session.scalars(select(Publication.sha256).where(Publication.sha256.in_(plan.files)))) if plan.files else set()
    for sha256 in plan.files:
        if sha256 not in referenced:
            store.remove(sha256)
