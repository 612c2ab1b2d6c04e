"""A project: notebooks/, templates/ and runs/ under one root folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Project"]


@dataclass(frozen=True)
class Project:
    """Where a project's folders are: notebooks/, templates/ and runs/ under one root."""

    root: Path

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"
