"""Where a report's templates and static files come from: the project's ``templates/`` first,
then the built-in defaults that ship inside the package (``toolkit/templates``).

A project overrides the defaults file by file: its own ``base.html.j2`` or ``static/report.css``
wins, anything it lacks (the fonts, the macros) comes from the package. A notebook outside any
project (no ``templates/`` at all) renders with the defaults alone. Every user of a project's
templates folder (Jinja's loader, the fenced fetcher, the fonts' metrics and coverage) asks here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUILTIN", "folders", "static_folders", "find_static"]

BUILTIN = Path(__file__).resolve().parent.parent / "templates"


def folders(templates_dir: Path) -> tuple[Path, ...]:
    """The project's templates folder, then the built-in one (once, when they are the same)."""
    own = Path(os.path.realpath(templates_dir))
    return (BUILTIN,) if own == BUILTIN else (own, BUILTIN)


def static_folders(templates_dir: Path) -> tuple[Path, ...]:
    return tuple(folder / "static" for folder in folders(templates_dir))


def find_static(templates_dir: Path, relative: str) -> Path:
    """The first static folder's file named ``relative``; the built-in path when none has it."""
    for static in static_folders(templates_dir):
        if (static / relative).is_file():
            return static / relative
    return BUILTIN / "static" / relative
