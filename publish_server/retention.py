"""``publications prune``: keep the newest N versions of each report, variant and period, remove the rest.

A version is a re-publication of the same report, variant and period; the newest N by
version number stay, withdrawn ones counted like the others (so a withdrawal is not undone by
pruning what replaced it). Rows go with their grants (ON DELETE CASCADE); audit rows are never
touched, and each removal adds one. A file goes only when no remaining row references it (the
store is content-addressed: two versions may share one file), through the crash-leftover sweep.
No ``request`` in here; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from sqlalchemy import delete, select

from . import audit
from .extensions import db
from .models import Publication, Report
from .storage import FileStore

__all__ = ["Plan", "plan_prune", "apply_prune"]


@dataclass(frozen=True)
class Plan:
    publications: list[Publication]  # rows to remove, by report, period and version
    files: list[Path]  # stored files that no kept row references


def plan_prune(keep: int, files_dir: Path) -> Plan:
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
    store = FileStore(files_dir)
    files = sorted({path for p in doomed if p.sha256 not in kept_hashes and (path := store.open_path(p.sha256))})
    return Plan(doomed, files)


def apply_prune(plan: Plan) -> None:
    """Delete the planned rows (one audit row each) and then their files. Commits the rows first:
    a crash between the two leaves files no row references, which the next sweep removes."""
    for publication in plan.publications:
        audit.record("publication_pruned", "ok", publication=publication.public_id, report=publication.report.slug,
                     version=publication.version, variant=publication.variant_label, period=publication.period_label, sha256=publication.sha256)
    ids = [p.id for p in plan.publications]
    if ids:
        db.session.execute(delete(Publication).where(Publication.id.in_(ids)).execution_options(synchronize_session=False))
    db.session.commit()
    for path in plan.files:
        path.unlink(missing_ok=True)
