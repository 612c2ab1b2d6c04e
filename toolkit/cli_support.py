"""What every ``nbpress`` command shares: errors as one line on stderr, the project folder."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import click

from . import settings
from .errors import NbpressError
from .project import Project

__all__ = ["handle_errors", "_fail", "_project", "_logging"]


def _fail(message: str, code: int) -> None:
    click.echo(f"nbpress: error: {message}", err=True)
    sys.exit(code)


def handle_errors(func):
    """Turn toolkit errors into one line on stderr and their exit status."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NbpressError as exc:
            _fail(str(exc) + _kept_in(exc), exc.exit_code)
        except Exception as exc:
            if settings.get("DEBUG"):
                raise
            first = (str(exc).splitlines() or [""])[0]
            _fail(f"unexpected {type(exc).__name__}: {first} (set NBPRESS_DEBUG=1 for the traceback)", 1)

    return wrapper


def _kept_in(exc: NbpressError) -> str:
    """Where a failed run's evidence is: the run folder, with the executed notebook when there is one."""
    run_dir = getattr(exc, "run_dir", None)  # set by the pipeline once the folder exists
    if run_dir is None:
        return ""
    kept = "; the executed notebook is kept there" if (Path(run_dir) / "executed.ipynb").exists() else ""
    return f" (run folder: {run_dir}{kept})"


def _project(ctx: click.Context) -> Project:
    return Project(Path(ctx.obj["project"]).resolve())


def _logging() -> None:
    """Timestamped lines on stderr for the daemons (APScheduler's own only when they matter)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("nbpress").setLevel(logging.INFO)  # papermill's and WeasyPrint's INFO lines are noise here
