"""A run's inputs checked together: the spec, the notebook's parameters cell and the values given.

:func:`prepare` refuses bad input before any folder is made or any kernel starts (exit 2); what
it returns, :class:`Prepared`, is what :func:`toolkit.runs.pipeline.run_report` runs and what a
batch sends to its workers (picklable).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NbpressError, NotebookError, SpecError
from .params import load_notebook, read_schema
from .spec import ReportSpec

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """A run that passed validation: the resolved parameters and the notebook's bytes."""

    spec: ReportSpec
    parameters: dict[str, Any]
    notebook_sha256: str


def prepare(spec: ReportSpec, given: dict[str, Any]) -> Prepared:
    """Check the notebook, the spec and the parameter values; no kernel, no folder."""
    raw = _read_bytes(spec.notebook)
    nb = load_notebook(spec.notebook)
    schema = read_schema(spec.notebook, nb)
    for key in spec.header_parameters:
        if key not in schema.names:
            raise SpecError(spec.path or spec.name, "header_parameters", f"{key!r} is not a parameter of the notebook")
    for name, value in spec.parameters.items():
        try:
            schema.check(name, value)
        except NbpressError as exc:
            raise SpecError(spec.path or spec.name, f"parameters.{name}", str(exc)) from None
    for key in spec.grid:
        if key not in schema.names:
            raise SpecError(spec.path or spec.name, f"grid.{key}", "is not a parameter of the notebook")
    for key in spec.audience.by if spec.audience else {}:
        if key not in schema.names:
            raise SpecError(spec.path or spec.name, f"audience.by.{key}", "is not a parameter of the notebook")
    parameters = schema.resolve(spec.parameters, given)
    return Prepared(spec, parameters, hashlib.sha256(raw).hexdigest())


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(path, "no such notebook") from None
