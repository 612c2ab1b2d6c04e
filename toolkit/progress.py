"""Progress for long runs: a live line on a terminal, silence in CI logs and pipes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["run_progress", "interactive"]


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def run_progress(label: str) -> Iterator:
    """Yield a ``(stage, detail)`` callback, or ``None`` when nobody is watching."""
    if not interactive():
        yield None
        return
    from rich.console import Console  # rich (~0.1 s) only for a terminal
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[stage]} {task.fields[detail]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, stage="", detail="")

        def update(stage: str, detail: str) -> None:
            progress.update(task, stage=stage, detail=detail)

        yield update
