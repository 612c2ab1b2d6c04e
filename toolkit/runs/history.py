"""``nbpress runs``: the run history, read from the ``run.json`` files under ``runs/``.

Nothing else keeps it: the run folders are the record (see :mod:`toolkit.runs.run_folder`). Unreadable
``run.json`` files are skipped with a note, so one damaged folder does not hide the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunDirError, UsageError
from .run_folder import RUN_FILE, RunRecord, load_run

__all__ = ["HistoryRow", "history", "plain_lines", "rich_table", "NOT_THROUGH"]

# `nbpress runs --failed`: runs whose PDF never came out (cancelled runs were stopped on purpose)
NOT_THROUGH = frozenset({"failed", "blocked"})


@dataclass(frozen=True)
class HistoryRow:
    run_dir: Path
    record: RunRecord

    @property
    def seconds(self) -> float | None:
        r = self.record
        return round((r.finished - r.started).total_seconds(), 1) if r.finished else None

    def as_json(self) -> dict[str, Any]:
        r = self.record
        publication = r.publication.model_dump() if r.publication else None
        return {"report": r.report, "run_id": r.run_id, "started": r.started.isoformat(),
                "finished": r.finished.isoformat() if r.finished else None, "status": r.status,
                "seconds": self.seconds, "parameters": r.parameters, "trigger": r.trigger, "attempt": r.attempt,
                "publication": publication, "error": r.error.message if r.error else None,
                "run_dir": str(self.run_dir)}


def _run_dirs(runs_dir: Path, report: str | None) -> Iterator[Path]:
    reports = [runs_dir / report] if report else sorted(p for p in runs_dir.iterdir() if p.is_dir())
    for folder in reports:
        if folder.name.startswith("."):
            continue
        for run_dir in folder.iterdir():
            if (run_dir / RUN_FILE).is_file():
                yield run_dir


def history(runs_dir: Path, report: str | None = None, *, limit: int | None = None,
            skipped: list[str] | None = None, statuses: frozenset[str] | None = None) -> list[HistoryRow]:
    """Runs newest first (by start time), optionally of one report and with one of ``statuses``,
    at most ``limit``."""
    if report and not (runs_dir / report).is_dir():
        raise UsageError(f"no runs of {report!r} in {runs_dir}")
    if not runs_dir.is_dir():
        return []
    rows = []
    for run_dir in _run_dirs(runs_dir, report):
        try:
            record = load_run(run_dir)
        except RunDirError as exc:
            if skipped is not None:
                skipped.append(str(exc))
            continue
        if statuses is None or record.status in statuses:
            rows.append(HistoryRow(run_dir, record))
    rows.sort(key=lambda row: (row.record.started, row.record.run_id), reverse=True)
    return rows[:limit] if limit else rows


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _cells(row: HistoryRow) -> list[str]:
    r = row.record
    params = ", ".join(f"{k}={v}" for k, v in r.parameters.items()) or "-"
    variant = " · ".join(r.variant.values())
    where = (f"{variant + ' ' if variant else ''}v{r.publication.version} {r.publication.page_url or r.publication.url} "
             f"(id {r.publication.id})") if r.publication else "-"
    seconds = f"{row.seconds:.1f} s" if row.seconds is not None else "-"
    return [_when(r.started), r.report, r.status, seconds, f"{r.trigger} #{r.attempt}", params, where, r.run_id]


HEADERS = ["started", "report", "status", "duration", "trigger", "parameters", "publication", "run"]


def plain_lines(rows: list[HistoryRow]) -> list[str]:
    """Tab-separated lines for logs and pipes (a header first)."""
    return ["\t".join(HEADERS)] + ["\t".join(_cells(row)) for row in rows]


def rich_table(rows: list[HistoryRow]):
    from rich.table import Table  # rich (~0.1 s) only for a terminal: --json and pipes do without
    from rich.text import Text  # not markup: parameter values may contain [brackets]

    styles = {"succeeded": "green", "failed": "red", "blocked": "yellow", "cancelled": "magenta", "running": "cyan"}
    table = Table(title="Runs, newest first", title_justify="left")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in rows:
        cells = [Text(cell) for cell in _cells(row)]
        cells[2].stylize(styles.get(row.record.status, ""))
        table.add_row(*cells)
    return table
