"""Run folders and their ``run.json``: the evidence each run leaves behind.

    runs/<report>/<run-id>/
        executed.ipynb   the notebook as it ran (kept also when it failed)
        assets/          figures referenced by the HTML
        report.html      the rendered HTML
        report.pdf       the PDF (written to a temp name, then renamed)
        run.json         parameters, status, timings per stage, versions, error, checks,
                         characters no font could draw (missing_glyphs)
        notification.eml what the owner was told (blocked or failed scheduled runs)

Statuses: ``running`` -> ``succeeded`` | ``failed`` (a stage raised) | ``blocked`` (the
notebook ran but a data check failed: nothing rendered or published) | ``cancelled`` (stopped
on purpose, e.g. the scheduler was told to stop; the run folder says so).

``run.json`` is rewritten atomically at each stage, so a crash leaves the last known state.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import secrets
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ..errors import RunDirError

__all__ = ["variant_label", "RunRecord", "TableLayoutRecord", "FailureRecord", "CheckResult", "MissingGlyph", "PublicationRef", "new_run_id",
           "run_dir_for", "create_run_dir", "load_run", "save_run", "fail_unfinished", "versions"]

Status = Literal["running", "succeeded", "failed", "blocked", "cancelled"]
FINAL_STATUSES = ("succeeded", "failed", "blocked", "cancelled")
RUN_FILE = "run.json"


class FailureRecord(BaseModel):
    """Why a run did not succeed, as ``run.json`` keeps it under ``error`` (a record, not an exception).

    ``type`` names the toolkit error (:mod:`toolkit.errors`); ``cell_index``, ``ename`` and
    ``evalue`` say where the notebook failed and with which of its own exceptions.
    """

    stage: str  # execute | checks | render | publish
    type: str
    message: str
    cell_index: int | None = None
    ename: str | None = None
    evalue: str | None = None


class CheckResult(BaseModel):
    """One data check's outcome (see :mod:`toolkit.checks`)."""

    check: str
    passed: bool
    detail: str = ""


class MissingGlyph(BaseModel):
    """A character the PDF shows as a box: no installed font has it (see :mod:`toolkit.render.glyphs`)."""

    char: str
    codepoint: str  # "U+E000"
    name: str = ""  # its Unicode name ("" for private use and unassigned code points)
    where: list[str] = []  # "table cities", "metric top_city", "figure trend", "title", ...


def variant_label(variant: dict[str, str]) -> str:
    """``{"region": "north", "unit": "kg"}`` -> ``"north · kg"``, as the portal labels a variant."""
    return " · ".join(variant.values())


class PublicationRef(BaseModel):
    """Where a run was published (written by ``nbpress publish``)."""

    id: str
    version: int
    portal: str
    url: str  # the download URL (API)
    page_url: str = ""  # the report's page, the link recipients open (empty in runs published before it existed)


class TableLayoutRecord(BaseModel):
    """How one table was fitted to the page (see :mod:`toolkit.render.wide_tables`)."""

    rule: Literal["fits", "smaller_font", "landscape", "column_groups"]
    font_pt: float  # the table's font size
    groups: int = 1  # tables it was cut into (column groups, each repeating the row labels)
    columns: int  # its data columns (the index not counted)


class RunRecord(BaseModel):
    report: str
    run_id: str
    status: Status = "running"
    parameters: dict[str, Any]
    period: str = ""  # the period the run covers, as readers see it (spec `period`, made when prepared)
    variant: dict[str, str] = {}  # the run's variant (spec `variant_by` -> its values), e.g. {"region": "north"}
    summary: str = ""  # spec `notify.summary` rendered after the run: the notification mails' line
    spec: dict[str, Any]
    notebook: str
    notebook_sha256: str
    started: dt.datetime
    finished: dt.datetime | None = None
    timings: dict[str, float] = {}
    versions: dict[str, str] = {}
    pages: int | None = None
    layout: dict[str, TableLayoutRecord] = {}  # every table of the PDF -> the rule that fitted it to the page
    refused_resources: list[str] = []
    missing_glyphs: list[MissingGlyph] = []
    error: FailureRecord | None = None
    publication: PublicationRef | None = None
    checks: list[CheckResult] = []
    trigger: str = "manual"  # manual | batch | schedule | request (nbpress worker) | preview
    attempt: int = 1  # retries of a scheduled run get new folders with attempt 2, 3, ...


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC time to the second plus 32 random bits."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def run_dir_for(runs_dir: Path, report: str, run_id: str) -> Path:
    """Where run ``run_id`` of ``report`` keeps its folder under ``runs_dir``."""
    return runs_dir / report / run_id


def create_run_dir(runs_dir: Path, report: str, run_id: str) -> Path:
    run_dir = run_dir_for(runs_dir, report, run_id)
    run_dir.mkdir(parents=True, exist_ok=False)  # a run never reuses a folder
    return run_dir


def fail_unfinished(run_dir: Path, error_type: str, message: str) -> bool:
    """Mark failed a run whose process ended without saying so (a worker killed mid-run), at the
    stage it had reached; its folder otherwise stays as it was. False (nothing written) when the
    folder has no readable ``run.json`` or the run had finished."""
    try:
        record = load_run(run_dir)
    except RunDirError:
        return False
    if record.status != "running":
        return False
    stage = next((s for s in ("execute", "checks") if s not in record.timings), "render")
    record.status = "failed"
    record.finished = dt.datetime.now(dt.timezone.utc)
    record.error = FailureRecord(stage=stage, type=error_type, message=message)
    save_run(run_dir, record)
    return True


def save_run(run_dir: Path, record: RunRecord) -> None:
    # A temporary name of its own per writer: two threads saving one run (racing publishers)
    # must not rename each other's half-written file.
    tmp = run_dir / f".{RUN_FILE}.{os.getpid()}.{threading.get_ident()}.part"
    tmp.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / RUN_FILE)


def load_run(run_dir: Path) -> RunRecord:
    path = run_dir / RUN_FILE
    try:
        return RunRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunDirError(f"{run_dir}: not a run folder (no {RUN_FILE})") from None
    except (json.JSONDecodeError, ValidationError) as exc:
        raise RunDirError(f"{path}: unreadable ({type(exc).__name__})") from None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("nbpress", "papermill", "nbclient", "ipykernel", "pandas", "matplotlib", "weasyprint", "jinja2"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found
