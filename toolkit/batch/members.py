"""Batches: one report over a parameter grid, every member in its own run folder and fresh kernel.

:func:`plan` turns the spec's grid (and ``--grid`` options) into prepared members, all checked
before anything runs: a bad value anywhere refuses the whole batch (exit 2) with no folder
made. :func:`run` hands the members to an executor (:mod:`toolkit.batch.executors`) and collects an
:class:`Outcome` per member as they finish; a failed member never stops the others. The
submitting side then tells owners about blocked members and publishes the succeeded ones.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataCheckError, ExecutorError, NbpressError, UsageError
from ..inputs.grid import expand, member_label, resolve_values
from ..inputs.prepare import Inputs, Prepared, read_inputs
from ..inputs.spec import ReportSpec
from ..project import Project
from ..runs.finish import AfterRun, finish
from ..runs.run_folder import fail_unfinished, new_run_id, run_dir_for

__all__ = ["Job", "Outcome", "Reporter", "plan", "run", "execute_job", "lost", "after_batch", "summary_lines"]


@dataclass(frozen=True)
class Job:
    """One member of a batch, as sent to a worker (picklable: no open files, no clients)."""

    index: int
    label: str
    prepared: Prepared
    root: Path  # the project root (templates/) as seen by the worker
    out_dir: Path | None = None  # runs folder; None: ROOT/runs
    trigger: str = "batch"
    attempt: int = 1
    # Chosen here, on the submitting side: if the worker dies mid-run, the folder it left can
    # still be found and marked failed (:func:`lost`).
    run_id: str = field(default_factory=new_run_id)


@dataclass
class Outcome:
    """What became of one member."""

    index: int
    label: str
    status: str  # succeeded | failed | blocked
    seconds: float
    run_dir: Path | None = None
    pages: int | None = None
    error: str | None = None
    error_type: str | None = None
    published: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pdf(self) -> Path | None:
        return self.run_dir / "report.pdf" if self.run_dir and self.status == "succeeded" else None


def _grid_values(spec: ReportSpec, schema, grid: Mapping[str, Any], as_of: dt.date) -> dict[str, list[Any]]:
    """Grid values typed like the parameters (command-line text is parsed per type)."""
    typed: dict[str, list[Any]] = {}
    for name, values in resolve_values(grid, as_of).items():
        if name not in schema.names:
            known = ", ".join(schema.names)
            raise UsageError(f"grid: {name!r} is not a parameter of {spec.notebook.name} (known: {known})")
        parameter = schema[name]
        typed[name] = [parameter.type.parse_text(name, v) if isinstance(v, str) and parameter.type.kind != "str"
                       else schema.check(name, v) for v in values]
    return typed


def plan(spec: ReportSpec, given: dict[str, Any], grid_options: Iterable[tuple[str, Any]] = (), *,
         use_spec_grid: bool = True, as_of: dt.date | None = None, inputs: Inputs | None = None) -> list[tuple[str, Prepared]]:
    """Every member of the batch, prepared: ``[(label, prepared), ...]`` in grid order.

    The grid is the spec's (unless ``use_spec_grid`` is false) with ``--grid`` options replacing
    keys of the same name; parameters given with ``-p``/``-f`` are fixed and leave the grid.
    The notebook is read once (``inputs``, when the caller has read it already); each member
    only checks its values.
    """
    inputs = inputs or read_inputs(spec)
    grid: dict[str, Any] = dict(spec.grid) if use_spec_grid else {}
    grid.update(dict(grid_options))
    for name in given:
        grid.pop(name, None)
    typed = _grid_values(spec, inputs.schema, grid, as_of or dt.date.today())
    return [(member_label(values), inputs.prepare({**given, **values})) for values in expand(typed)]


def execute_job(job: Job, launcher: Any = None) -> Outcome:
    """Run one member where this is called (a worker); never raises for the member's failures."""
    # Here, not at the top: the submitting side plans and collects; papermill and the renderer
    # load only where a member runs (a worker preloads them, see toolkit.batch.local).
    from ..runs.pipeline import run_report

    start = time.perf_counter()
    try:
        run_dir, record = run_report(job.prepared, Project(job.root), out_dir=job.out_dir, trigger=job.trigger,
                                     attempt=job.attempt, launcher=launcher, run_id=job.run_id)
    except DataCheckError as exc:
        return Outcome(job.index, job.label, "blocked", time.perf_counter() - start, getattr(exc, "run_dir", None),
                       error=str(exc), error_type=type(exc).__name__)
    except NbpressError as exc:
        return Outcome(job.index, job.label, "failed", time.perf_counter() - start, getattr(exc, "run_dir", None),
                       error=str(exc), error_type=type(exc).__name__)
    except Exception as exc:  # a worker must report, not die: the batch goes on
        first = (str(exc).splitlines() or [""])[0]
        return Outcome(job.index, job.label, "failed", time.perf_counter() - start, None,
                       error=f"unexpected {type(exc).__name__}: {first}", error_type=type(exc).__name__)
    return Outcome(job.index, job.label, "succeeded", time.perf_counter() - start, run_dir, pages=record.pages)


def lost(job: Job, seconds: float, error: ExecutorError) -> Outcome:
    """The outcome of a member whose worker died. Its run folder, when it was started where this
    side can see it (the local executor, ``--cluster local:N``), says ``failed`` with the reason
    instead of ``running`` for ever."""
    run_dir = run_dir_for(job.out_dir or Project(job.root).runs_dir, job.prepared.spec.name, job.run_id)
    marked = fail_unfinished(run_dir, type(error).__name__, str(error))
    return Outcome(job.index, job.label, "failed", seconds, run_dir if marked else None,
                   error=str(error), error_type=type(error).__name__)


def run(jobs: list[Job], executor, on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every job on ``executor``; outcomes in job order (``on_done`` sees them as they finish)."""
    outcomes: dict[int, Outcome] = {}
    for outcome in executor.run(jobs):
        outcomes[outcome.index] = outcome
        if on_done is not None:
            on_done(outcome)
    return [outcomes[job.index] for job in jobs]


def after_batch(outcomes: list[Outcome], spec: ReportSpec, policy: AfterRun) -> None:
    """On the submitting side: :func:`toolkit.runs.finish.finish` for every member that has a run folder.

    A publication failure marks that member failed (its PDF exists but did not reach readers).
    """
    for outcome in outcomes:
        if outcome.run_dir is None:
            continue
        done = finish(outcome.run_dir, spec, policy)
        if done.error is not None:
            outcome.status, outcome.error, outcome.error_type = "failed", f"publish: {done.error}", type(done.error).__name__
        elif done.published is not None:
            nobody = " (nobody can read it yet)" if done.published.nobody_can_read else ""
            variant = f"{done.published.variant_label} " if done.published.variant_label else ""
            outcome.published = f"{variant}v{done.published.version} {done.published.link}{nobody}"


def summary_lines(outcomes: list[Outcome], wall: float) -> list[str]:
    """The table printed at the end: status, duration, then the PDF or the error."""
    rows = [("status", "seconds", "member", "pdf or error")]
    for o in outcomes:
        where = str(o.pdf) if o.pdf else (o.error or "")
        if o.published:
            where += f"  (published {o.published})"
        rows.append((o.status, f"{o.seconds:.1f}", o.label, where))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    ok = sum(o.status == "succeeded" for o in outcomes)
    rate = 60 * len(outcomes) / wall if wall > 0 else 0.0
    lines.append(f"{ok} of {len(outcomes)} succeeded in {wall:.1f} s ({rate:.1f} runs/minute)")
    return lines


class Reporter:
    """One line per finished member; on a terminal also an overall bar (rich), in logs plain lines."""

    def __init__(self, total: int, *, interactive: bool, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self._progress = self._task = None
        if interactive:  # rich (~0.1 s) only for a terminal
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=Console(file=self.stream), transient=True)

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("batch", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        where = str(outcome.pdf) if outcome.pdf else (outcome.error or "")
        line = f"[{self.done}/{self.total}] {outcome.status:<9} {outcome.seconds:5.1f} s  {outcome.label}  {where}"
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
            self._progress.advance(self._task)
        else:
            print(line, file=self.stream, flush=True)
