"""The preview's renders, each in a folder of its own under a temporary work folder.

The kept run folder is only read: its ``executed.ipynb`` and ``run.json`` are copied once to
``WORK/source``, and every render happens in a new ``WORK/vN`` through the pipeline's own
:func:`~toolkit.runs.pipeline.render_run` with the spec as its file says now. A failed
render (a template syntax error, a broken spec) becomes the status line and the last good
render stays on show. ``--execute`` runs go to ``WORK/runs``, not to the project's ``runs/``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NbpressError
from ..inputs.spec import ReportSpec, load_spec
from ..project import Project
from ..runs.pipeline import render_run, run_report
from ..runs.run_folder import RUN_FILE, load_run

__all__ = ["Shown", "LivePreview"]

KEPT = ("executed.ipynb", RUN_FILE)  # what a render needs from a run folder


@dataclass(frozen=True)
class Shown:
    """What the page shows: replaced whole after each render, so server threads read it safely."""

    version: int
    folder: Path | None  # the last good render (report.html, report.pdf, assets/); None before one
    ok: bool  # did the last render (or run) succeed
    message: str  # one line: what was rendered, or why it failed
    pages: int = 0
    seconds: float = 0.0  # the last render's (or run's) duration

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "ok": self.ok, "message": self.message, "pages": self.pages,
                "seconds": self.seconds, "has_pdf": self.folder is not None}


def _one_line(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0]
    return text if isinstance(exc, NbpressError) else f"{type(exc).__name__}: {text}"


class LivePreview:
    """Renders of one run's records with the project's templates and the spec file as they are now."""

    def __init__(self, run_dir: Path, project: Project, spec_file: Path | None, work: Path):
        self.project, self.spec_file, self.work = project, spec_file, work
        self.source = work / "source"
        self._copy_run(run_dir)
        self.shown = Shown(0, None, False, "not rendered yet")
        self._good: list[Path] = []  # good render folders, oldest first

    def _copy_run(self, run_dir: Path) -> None:
        shutil.rmtree(self.source, ignore_errors=True)
        self.source.mkdir(parents=True)
        for name in KEPT:
            shutil.copy2(run_dir / name, self.source / name)

    def spec(self) -> ReportSpec:
        """The spec file as it is now; without one, the spec the run kept."""
        if self.spec_file is not None:
            return load_spec(self.spec_file)
        return ReportSpec.model_validate(load_run(self.source).spec)

    def render(self, why: str) -> Shown:
        """Render the records again into a new folder; on failure the last good render stays."""
        folder = self.work / f"v{self.shown.version + 1}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            os.link(self.source / "executed.ipynb", folder / "executed.ipynb")  # only read: no copy needed
        except OSError:
            shutil.copy2(self.source / "executed.ipynb", folder / "executed.ipynb")
        shutil.copy2(self.source / RUN_FILE, folder / RUN_FILE)  # rewritten by the render
        start = time.perf_counter()
        try:
            record = render_run(folder, self.project, spec=self.spec())
        except Exception as exc:  # whatever broke is shown on the page; the preview keeps going
            shutil.rmtree(folder, ignore_errors=True)
            return self._failed(why, exc, time.perf_counter() - start)
        seconds = time.perf_counter() - start
        return self._show(folder, record.pages, seconds, f"rendered ({why}) in {seconds:.2f} s")

    def execute(self, why: str, given: dict[str, Any]) -> Shown:
        """Run the notebook again (spec defaults overlaid with ``given``); its render is shown."""
        from ..inputs.prepare import read_inputs

        start = time.perf_counter()
        try:
            spec = self.spec()
            prepared = read_inputs(spec).prepare(given)
            run_dir, record = run_report(prepared, self.project, out_dir=self.work / "runs", trigger="preview")
        except Exception as exc:  # e.g. a cell raised: said on the page, the last good render stays
            return self._failed(why, exc, time.perf_counter() - start)
        self._copy_run(run_dir)  # later template edits render these new records
        seconds = time.perf_counter() - start
        return self._show(run_dir, record.pages, seconds, f"ran the notebook ({why}) in {seconds:.1f} s")

    def _show(self, folder: Path, pages: int, seconds: float, message: str) -> Shown:
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self.shown = Shown(self.shown.version + 1, folder, True, f"{stamp} {message}", pages, round(seconds, 3))
        self._good.append(folder)
        for old in self._good[:-2]:  # the one before stays: a browser may still be reading it
            shutil.rmtree(old, ignore_errors=True)
        self._good = self._good[-2:]
        return self.shown

    def _failed(self, why: str, exc: BaseException, seconds: float) -> Shown:
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        last = self.shown
        self.shown = Shown(last.version + 1, last.folder, False, f"{stamp} failed ({why}): {_one_line(exc)}",
                           last.pages, round(seconds, 3))
        return self.shown
