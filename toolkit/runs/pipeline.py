"""The pipeline: execute -> read records -> checks -> render HTML -> write PDF.

:func:`run_report` does a whole run of a :class:`~toolkit.inputs.prepare.Prepared` report (its
input already checked: no folder is made or kernel started for bad input); :func:`render_run`
re-renders a finished run from its executed notebook without running anything again. Every
failure after the run folder is made is written to ``run.json``.

Imported where a run happens (the CLI's ``run``, a batch worker, the scheduler): it loads
papermill and the renderer. Planning a batch needs only :mod:`toolkit.inputs.prepare`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat

from ..checks import run_checks
from ..errors import DataCheckError, ExecutionError, MissingGlyphError, NbpressError, RunDirError
from ..execute.papermill_run import execute
from ..inputs.params import SECRET_SHOWN, to_jsonable
from ..inputs.prepare import Prepared, check_secrets
from ..inputs.sensitive import hidden_values, shareable
from ..inputs.spec import ReportSpec
from ..inputs.summary import render_summary
from ..notebook import records as rec
from ..project import Project
from ..render import glyphs, longtable
from ..render.html import ReportContext, render_report, write_assets
from ..render.pdf import write_pdf
from .masking import mask_error, mask_file, secret_values
from .run_folder import (FailureRecord, MissingGlyph, RunRecord, TableLayoutRecord, create_run_dir, load_run, new_run_id,
                         save_run, versions)

__all__ = ["run_report", "render_run"]

log = logging.getLogger(__name__)

# Progress callback: (stage, detail) e.g. ("execute", "cell 3/12")
Progress = Callable[[str, str], None]


class _Stopwatch:
    def __init__(self, record: RunRecord, progress: Progress | None):
        self.record, self.progress = record, progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, "")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record.timings[name] = round(time.perf_counter() - start, 3)


def run_report(
    prepared: Prepared,
    project: Project,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    trigger: str = "manual",
    attempt: int = 1,
    launcher: Any = None,
    run_id: str | None = None,
) -> tuple[Path, RunRecord]:
    """Execute, check and render one run; returns the run folder and its record.

    Raises the stage's :class:`NbpressError` after writing it to ``run.json``; failed data
    checks raise :class:`DataCheckError` with the run marked ``blocked`` (nothing rendered).
    ``launcher`` starts the kernel (the batch fork server); None: a new kernel process.
    ``run_id``: the folder's name when the caller chose it (a batch member); a new one otherwise.
    """
    spec = prepared.spec
    check_secrets(prepared.secrets)  # e.g. a remote worker without the variables: refused, no folder
    run_id = run_id or new_run_id()
    run_dir = create_run_dir(out_dir or project.runs_dir, spec.name, run_id)
    record = RunRecord(
        report=spec.name,
        run_id=run_id,
        parameters={**shareable({k: to_jsonable(v) for k, v in prepared.parameters.items()}),
                    **{k: SECRET_SHOWN for k in prepared.secrets}},
        period=prepared.period,
        variant=prepared.variant,
        spec=_stored_spec(spec),
        notebook=str(spec.notebook),
        notebook_sha256=prepared.notebook_sha256,
        started=dt.datetime.now(dt.timezone.utc),
        versions=versions(),
        trigger=trigger,
        attempt=attempt,
    )
    save_run(run_dir, record)
    clock = _Stopwatch(record, progress)
    stage = "execute"
    hidden = secret_values(prepared.secrets) + hidden_values(prepared.parameters)
    try:
        with clock.stage("execute"), _masked(run_dir / "executed.ipynb", hidden):
            execute(
                spec.notebook,
                run_dir / "executed.ipynb",
                prepared.parameters,
                source=prepared.notebook,
                parameters_cell=prepared.parameters_cell,
                run_id=run_id,
                cell_timeout=spec.timeouts.cell,
                start_timeout=spec.timeouts.start,
                on_cell=(lambda i, n, phase: progress("execute", f"cell {i + 1}/{n}")) if progress else None,
                launcher=launcher,
                secrets=prepared.secrets,
            )
        records = None
        if spec.checks:
            stage = "checks"
            with clock.stage("checks"):  # reads the records once, for the checks and the render
                records = rec.read_records(nbformat.read(str(run_dir / "executed.ipynb"), as_version=4))
                _check(run_dir, record, spec, records)
        stage = "render"
        _render(run_dir, record, spec, project, clock, records)
    except DataCheckError as exc:  # already written: status "blocked"
        exc.run_dir = run_dir
        raise
    except NbpressError as exc:
        mask_error(exc, hidden)
        _fail(run_dir, record, stage, exc)
        exc.run_dir = run_dir  # callers (batches, the scheduler) report where the evidence is
        raise
    except BaseException as exc:  # KeyboardInterrupt and surprises still leave a trace
        mask_error(exc, hidden)
        _fail(run_dir, record, stage, exc)
        raise
    record.status = "succeeded"
    record.finished = dt.datetime.now(dt.timezone.utc)
    save_run(run_dir, record)
    return run_dir, record


def _stored_spec(spec: ReportSpec) -> dict[str, Any]:
    """The spec as run.json keeps it: its parameter defaults and grid masked like the parameters."""
    data = spec.model_dump(mode="json", exclude={"path"})
    data["parameters"] = shareable(data["parameters"])
    data["grid"] = shareable(data["grid"])
    return data


@contextmanager
def _masked(executed: Path, values: list[str]) -> Iterator[None]:
    """Whatever happens in the kernel, the executed notebook is kept with the secrets masked."""
    try:
        yield
    finally:
        mask_file(executed, values)


def render_run(run_dir: Path, project: Project, *, template: str | None = None, spec: ReportSpec | None = None,
               progress: Progress | None = None) -> RunRecord:
    """Render a finished run again from its executed notebook (no execution).

    ``spec``: render with this spec (e.g. the spec file as edited since the run) instead of the
    one the run kept in ``run.json``.
    """
    record = load_run(run_dir)
    if not (run_dir / "executed.ipynb").exists() or (record.error and record.error.stage == "execute"):
        raise RunDirError(f"{run_dir}: the notebook did not finish executing; nothing to render")
    spec_data = spec.model_dump() if spec is not None else dict(record.spec)
    if template:
        spec_data["template"] = template
    spec = ReportSpec.model_validate(spec_data)
    record.error, record.refused_resources, record.missing_glyphs = None, [], []
    clock = _Stopwatch(record, progress)
    try:
        _render(run_dir, record, spec, project, clock)
    except NbpressError as exc:
        _fail(run_dir, record, "render", exc)
        raise
    record.status = "succeeded"
    record.spec = _stored_spec(spec)
    record.finished = dt.datetime.now(dt.timezone.utc)
    save_run(run_dir, record)
    return record


def _check(run_dir: Path, record: RunRecord, spec: ReportSpec, records: dict[str, rec.Record]) -> None:
    """Run the spec's data checks; any failure blocks the run before anything is rendered."""
    record.checks = run_checks(spec.checks, records)
    failures = [f"{r.check} ({r.detail})" for r in record.checks if not r.passed]
    if failures:
        error = DataCheckError(failures)
        record.status = "blocked"
        record.finished = dt.datetime.now(dt.timezone.utc)
        record.error = FailureRecord(stage="checks", type=type(error).__name__, message=str(error))
        save_run(run_dir, record)
        raise error


def _render(run_dir: Path, record: RunRecord, spec: ReportSpec, project: Project, clock: _Stopwatch,
            records: dict[str, rec.Record] | None = None) -> None:
    with clock.stage("records"):
        if records is None:
            nb = nbformat.read(str(run_dir / "executed.ipynb"), as_version=4)
            records = rec.read_records(nb)
        figures = write_assets(records, run_dir / "assets")
        if spec.notify.summary:
            metrics = {name: r.value for name, r in records.items() if isinstance(r, rec.Metric)}
            record.summary = render_summary(spec.notify.summary, params=record.parameters, period=record.period, metrics=metrics)
    with clock.stage("html"):
        context = ReportContext(
            spec=spec,
            params=record.parameters,
            run_id=record.run_id,
            generated=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
            notebook_sha256=record.notebook_sha256,
        )
        # Longer tables are laid out in parallel chunks by write_pdf; read at run time, so it can be set.
        rendered = render_report(context, records, figures, project.templates_dir, long_table_rows=longtable.LONG_TABLE_ROWS)
        html = rendered.html
        record.layout = {name: TableLayoutRecord(**layout) for name, layout in rendered.layouts.items()}
        (run_dir / "report.html").write_text(html, encoding="utf-8")
        _check_glyphs(record, spec, records, project)
    with clock.stage("pdf"):
        attachments = _csv_attachments(records, spec)
        result = write_pdf(html, run_dir / "report.pdf", base_dir=run_dir, templates_dir=project.templates_dir,
                           attachments=attachments, variant=spec.pdf_variant)
    record.pages, record.refused_resources = result.pages, result.refused


def _check_glyphs(record: RunRecord, spec: ReportSpec, records: dict[str, rec.Record], project: Project) -> None:
    """Characters no font can draw are named in run.json and on stderr; with the spec's
    ``missing_glyphs: fail`` they fail the render before the PDF is laid out."""
    missing = glyphs.find_missing(spec, record.parameters, records, project.templates_dir)
    record.missing_glyphs = [MissingGlyph(**asdict(m)) for m in missing]
    for entry in missing:
        log.warning("no installed font can draw %s", glyphs.describe(entry))
    if missing and spec.missing_glyphs == "fail":
        raise MissingGlyphError([glyphs.describe(m) for m in missing])


def _csv_attachments(records: dict[str, rec.Record], spec: ReportSpec) -> list[tuple[str, bytes]]:
    """Full tables, as CSV, for tables whose PDF body is cut at ``max_rows``."""
    attachments = []
    for name, options in spec.tables.items():
        record = records.get(name)
        if isinstance(record, rec.Table) and options.max_rows:
            frame = record.frame
            if len(frame) > options.max_rows:
                attachments.append((f"{name}.csv", frame.to_csv().encode("utf-8")))
    return attachments


def _fail(run_dir: Path, record: RunRecord, stage: str, exc: BaseException) -> None:
    fields = {}
    if isinstance(exc, ExecutionError):
        fields = {"cell_index": exc.cell_index, "ename": exc.ename, "evalue": exc.evalue}
    record.status = "failed"
    record.finished = dt.datetime.now(dt.timezone.utc)
    record.error = FailureRecord(stage=stage, type=type(exc).__name__, message=str(exc) or type(exc).__name__, **fields)
    save_run(run_dir, record)
