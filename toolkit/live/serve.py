"""``nbpress preview``: which run to show, then watch and serve until Ctrl-C or SIGTERM.

REPORT (a name, spec or notebook) shows the newest succeeded run of the report, running it
once in ``runs/`` (said on the way) when there is none; a RUN_DIR shows that run. The spec file
is the one beside the run's notebook, when there is one.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..inputs.spec import ReportSpec, find_report
from ..project import Project
from ..render.template_folders import static_folders
from ..runs.history import history
from ..runs.run_folder import RUN_FILE, load_run
from .file_watch import FileWatch
from .preview_page import PreviewServer
from .rerender import LivePreview

__all__ = ["find_source", "serve_preview", "POLL_SECONDS"]

POLL_SECONDS = 0.1  # how often the watched files are looked at (a few stat calls): an edit shows within this plus a render

Say = Callable[[str], None]


def _spec_file(spec: ReportSpec) -> Path | None:
    return spec.path if spec.path is not None and spec.path.exists() else None


def _given(spec: ReportSpec, assignments: Sequence[str]) -> dict[str, Any]:
    """``-p NAME=VALUE`` for the runs the preview makes, parsed by the notebook's types."""
    from ..inputs.prepare import read_inputs

    return read_inputs(spec).given(None, assignments) if assignments else {}


def find_source(ref: str, project: Project, assignments: Sequence[str], say: Say) -> tuple[Path, Path | None, ReportSpec | None]:
    """(run folder, spec file or None, spec when known) for REPORT_OR_RUN_DIR."""
    folder = Path(ref)
    if (folder / RUN_FILE).is_file():
        record = load_run(folder)
        if record.status != "succeeded":
            raise UsageError(f"{folder}: the run {record.status}; preview a succeeded run (or the report's name)")
        notebook = Path(record.notebook)
        beside = notebook.with_suffix(".yml")
        return folder, beside if beside.exists() else None, None
    spec = find_report(ref, project.notebooks_dir)
    has_runs = (project.runs_dir / spec.name).is_dir()
    runs = history(project.runs_dir, spec.name, limit=1, statuses=frozenset({"succeeded"})) if has_runs else []
    if runs:
        say(f"previewing {runs[0].run_dir} (the newest succeeded run of {spec.name})")
        return runs[0].run_dir, _spec_file(spec), spec
    say(f"no succeeded run of {spec.name} in {project.runs_dir}: running it once (spec defaults)...")
    from ..inputs.prepare import read_inputs
    from ..runs.pipeline import run_report

    run_dir, _ = run_report(read_inputs(spec).prepare(_given(spec, assignments)), project)
    say(f"ran {run_dir}")
    return run_dir, _spec_file(spec), spec


def _watched(project: Project, spec_file: Path | None) -> list[Path]:
    return [project.templates_dir] + ([spec_file] if spec_file else [])


def serve_preview(ref: str, project: Project, *, port: int = 0, execute: bool = False, assignments: Sequence[str] = (),
                  say: Say = print, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the preview until Ctrl-C or SIGTERM; returns after a clean stop (server closed, temp folder removed)."""
    run_dir, spec_file, spec = find_source(ref, project, assignments, say)
    work = Path(tempfile.mkdtemp(prefix="nbpress-live-"))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    server = None
    try:
        live = LivePreview(run_dir, project, spec_file, work)
        spec = spec or live.spec()
        given = _given(spec, assignments) if execute else {}  # a bad -p is refused before serving
        templates = FileWatch(_watched(project, spec_file))
        notebooks = FileWatch([spec.notebook]) if execute else None
        server = PreviewServer(spec.name, lambda: live.shown, static_folders(project.templates_dir), port)
        say(live.render("start").message)  # before the URL: the page has something to show
        server.start()
        say(f"watching {', '.join(map(str, _watched(project, spec_file)))}" + (f" and {spec.notebook}" if execute else ""))
        say(f"preview of {run_dir} at {server.url}  (Ctrl-C stops it)")
        if on_ready:
            on_ready(server.url)
        while True:
            time.sleep(POLL_SECONDS)
            if notebooks is not None and (saved := notebooks.changed()):
                say(f"{saved[0].name} saved: running it...")
                say(live.execute(f"{saved[0].name} saved", given).message)
                templates.changed()  # the run rendered with the templates as they are now
                continue
            if edited := templates.changed():
                names = ", ".join(p.name for p in edited[:3]) + (" ..." if len(edited) > 3 else "")
                say(live.render(f"{names} changed").message)
    except KeyboardInterrupt:
        say("preview stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the preview the way Ctrl-C does
