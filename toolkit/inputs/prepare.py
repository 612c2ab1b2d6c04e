"""A run's inputs checked together: the spec, the notebook's parameters cell and the values given.

:func:`read_inputs` reads the notebook once (its bytes, for the SHA-256 and for the kernel) and
its parameters cell once, and checks the spec against it. :meth:`Inputs.prepare` then checks a
set of values (typed once: ``-p`` text is parsed here and nowhere else) and makes the period
label. All of this happens before any folder is made or any kernel starts (bad input: exit 2).
What it returns, :class:`Prepared`, is what :func:`toolkit.runs.pipeline.run_report` runs and
what a batch sends to its workers (picklable): the notebook travels inside it, so what runs is
exactly what was checked and hashed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NbpressError, NotebookError, ParameterError, SpecError
from .params import (Schema, SecretGivenError, find_parameters_cell, parse_notebook, read_notebook_json, read_schema,
                     secret_variable)
from .period import fields, period_label
from .sensitive import exposure_warnings
from .spec import ReportSpec

if TYPE_CHECKING:
    import nbformat

__all__ = ["Inputs", "Prepared", "read_inputs", "prepare", "check_secrets", "SecretMissingError"]

log = logging.getLogger(__name__)


class SecretMissingError(ParameterError):
    def __init__(self, name: str, variable: str):
        super().__init__(name, None, "Secret", problem=f"is a secret and the environment variable {variable} is not set")


@dataclass(frozen=True)
class Prepared:
    """A run that passed validation: typed parameters, the notebook as read, its label."""

    spec: ReportSpec
    parameters: dict[str, Any]
    notebook_sha256: str
    notebook: nbformat.NotebookNode
    parameters_cell: int | None  # index of the cell tagged ``parameters`` (None: the notebook has none)
    period: str = ""
    variant: dict[str, str] = field(default_factory=dict)  # spec variant_by -> this run's values, e.g. {"region": "north"}
    # Secret parameter -> the environment variable holding its value (never the value itself:
    # the kernel reads the variable; see toolkit.execute.papermill_run).
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """A report's notebook and parameter schema, read once for any number of runs."""

    spec: ReportSpec
    raw: bytes = field(repr=False)  # the notebook file's bytes: what is hashed and what runs
    schema: Schema
    sha256: str
    parameters_cell: int | None
    warned: set[str] = field(default_factory=set, compare=False, repr=False)  # said once per command, not per member

    @functools.cached_property
    def notebook(self) -> nbformat.NotebookNode:
        """The notebook for the kernel, parsed by nbformat only once values passed (its import is slow)."""
        return parse_notebook(self.raw, self.spec.notebook)

    def given(self, values: dict[str, Any] | None = None, assignments: Iterable[str] = ()) -> dict[str, Any]:
        """Values from a file (typed YAML) overlaid with ``-p NAME=VALUE`` text, parsed by type."""
        assignments = list(assignments)
        for name in [*(values or {}), *(a.partition("=")[0].strip() for a in assignments)]:
            self._refuse_secret(name)
        return {**(values or {}), **self.schema.parse_assignments(assignments)}

    @property
    def secrets(self) -> dict[str, str]:
        """Secret parameter -> the environment variable its value is read from."""
        return {name: secret_variable(name, self.spec.secrets) for name in self.schema.secrets}

    def _refuse_secret(self, name: str) -> None:
        if name in self.schema.secrets:
            raise SecretGivenError(name, secret_variable(name, self.spec.secrets))

    def prepare(self, given: dict[str, Any], environ: Mapping[str, str] | None = None) -> Prepared:
        """Check ``given`` over the spec's defaults and the notebook's; ParameterError names the value.

        Every secret's environment variable must be set in ``environ`` (default: this process's).
        """
        for name in given:
            self._refuse_secret(name)
        secrets = self.secrets
        check_secrets(secrets, environ)
        parameters = self.schema.resolve(self.spec.parameters, given)
        for line in exposure_warnings(parameters):
            if line not in self.warned:
                self.warned.add(line)
                log.warning(line)
        try:
            label = period_label(self.spec.period, parameters, self.spec.header_parameters)
        except (ValueError, TypeError) as exc:  # e.g. a strftime code for a value that is None
            raise SpecError(self.spec.path or self.spec.name, "period", f"cannot be made from these values: {exc}") from None
        return Prepared(self.spec, parameters, self.sha256, self.notebook, self.parameters_cell, label,
                        variant=self.spec.variant_of(parameters), secrets=secrets)


def check_secrets(secrets: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Refuse a run whose secrets' environment variables are not set (names the variable, never a value)."""
    env = os.environ if environ is None else environ
    for name, variable in secrets.items():
        if variable not in env:
            raise SecretMissingError(name, variable)


def read_inputs(spec: ReportSpec) -> Inputs:
    """Read the notebook and its schema; refuse a spec that names what the notebook lacks."""
    raw = _read_bytes(spec.notebook)
    nb = read_notebook_json(raw, spec.notebook)  # plain JSON: enough to check the values given
    schema = read_schema(spec.notebook, nb)
    where = spec.path or spec.name
    secret = set(schema.secrets)
    for key in spec.secrets:
        if key not in secret:
            raise SpecError(where, f"secrets.{key}", "is not a parameter of the notebook annotated Secret")
    for key in spec.header_parameters:
        if key not in schema.names:
            raise SpecError(where, "header_parameters", f"{key!r} is not a parameter of the notebook")
        if key in secret:
            raise SpecError(where, "header_parameters", f"{key!r} is a secret: it is never shown")
    for key in spec.show_parameters or {}:
        if key not in schema.names:
            raise SpecError(where, "show_parameters", f"{key!r} is not a parameter of the notebook")
        if key in secret:
            raise SpecError(where, "show_parameters", f"{key!r} is a secret: it is never shown")
    for key in spec.run_parameters or []:
        if key not in schema.names:
            raise SpecError(where, "run_parameters", f"{key!r} is not a parameter of the notebook")
        if key in secret:
            raise SpecError(where, "run_parameters", f"{key!r} is a secret: it comes from the environment only")
    if spec.show_parameters is not None:
        for key in spec.header_parameters:
            if key not in spec.show_parameters:
                raise SpecError(where, "header_parameters", f"{key!r} is not shown (add it to show_parameters)")
    for key in fields(spec.period) if spec.period else []:
        if key not in schema.names:
            raise SpecError(where, "period", f"{{{key}}} is not a parameter of the notebook")
        if key in secret:
            raise SpecError(where, "period", f"{{{key}}} is a secret: it is never shown")
    for name, value in spec.parameters.items():
        try:
            schema.check(name, value)
        except NbpressError as exc:
            raise SpecError(where, f"parameters.{name}", str(exc)) from None
    for key in spec.grid:
        if key not in schema.names:
            raise SpecError(where, f"grid.{key}", "is not a parameter of the notebook")
        if key in secret:
            raise SpecError(where, f"grid.{key}", "is a secret: it comes from the environment")
    for key in spec.variant_by:
        if key not in schema.names:
            raise SpecError(where, "variant_by", f"{key!r} is not a parameter of the notebook")
        if key in secret:
            raise SpecError(where, "variant_by", f"{key!r} is a secret: it is never shown")
    for key in spec.audience.by if spec.audience else {}:
        if key not in schema.names:
            raise SpecError(where, f"audience.by.{key}", "is not a parameter of the notebook")
    cell = find_parameters_cell(nb)
    return Inputs(spec, raw, schema, hashlib.sha256(raw).hexdigest(), cell[0] if cell else None)


def prepare(spec: ReportSpec, given: dict[str, Any] | None = None, *, assignments: Iterable[str] = ()) -> Prepared:
    """One run's inputs: :func:`read_inputs` then :meth:`Inputs.prepare`."""
    inputs = read_inputs(spec)
    return inputs.prepare(inputs.given(given, assignments))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(path, "no such notebook") from None
    except IsADirectoryError:
        raise NotebookError(path, "is a folder, not a notebook") from None
