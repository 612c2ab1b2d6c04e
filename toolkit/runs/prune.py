"""``nbpress runs prune``: remove old run folders, newest N per report kept.

A run folder is the run's whole record (see :mod:`toolkit.runs.run_folder`), so pruning is
deliberate: a dry run lists what would go, ``--yes`` removes it. A ``running`` run is never
removed (its process may still be writing there), nor a folder whose ``run.json`` cannot be read
(we cannot tell what it is).
"""

from __future__ import annotations

import datetime as dt
import shutil
from itertools import groupby
from pathlib import Path

from ..errors import UsageError
from .history import HistoryRow, history
from .run_folder import load_run

__all__ = ["plan_prune", "remove"]


def plan_prune(runs_dir: Path, *, older_than_days: int | None = None, keep: int | None = None,
               now: dt.datetime | None = None, skipped: list[str] | None = None) -> list[HistoryRow]:
    """Runs to remove: not ``running``, beyond the newest ``keep`` of their report (if given) and
    started more than ``older_than_days`` ago (if given). Both given: a run must meet both."""
    if older_than_days is None and keep is None:
        raise UsageError("say what to prune: --older-than DAYS, --keep N, or both")
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = now - dt.timedelta(days=older_than_days) if older_than_days is not None else None
    rows = sorted(history(runs_dir, skipped=skipped), key=lambda r: r.record.report)  # stable: newest first within
    doomed: list[HistoryRow] = []
    for _report, runs in groupby(rows, key=lambda r: r.record.report):
        for position, row in enumerate(runs):
            if row.record.status == "running":
                continue
            if keep is not None and position < keep:
                continue
            if cutoff is not None and _aware(row.record.started) > cutoff:
                continue
            doomed.append(row)
    return doomed


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def remove(rows: list[HistoryRow]) -> list[HistoryRow]:
    """Remove the run folders; each is read again first, so a run that started meanwhile (a
    retried run reusing nothing, but a folder now ``running``) is spared. Returns the removed."""
    removed = []
    for row in rows:
        try:
            if load_run(row.run_dir).status == "running":
                continue
        except UsageError:
            continue
        shutil.rmtree(row.run_dir)
        removed.append(row)
    return removed
