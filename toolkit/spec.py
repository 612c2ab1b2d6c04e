"""Report specs: the small YAML file beside a notebook (``notebooks/<name>.yml``).

A spec names the notebook, the template, the title and metadata, parameter defaults, page
settings and timeouts. Errors name the file and the key (``weekly.yml: timeouts.cell: ...``).
A notebook without a spec is still a report, with defaults taken from its file name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from .errors import SpecError, UsageError

__all__ = ["ReportSpec", "Audience", "Timeouts", "PageSettings", "TableOptions", "load_spec", "find_report"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    cell: PositiveInt | None = Field(600, description="seconds one cell may run (None: no limit)")
    start: PositiveInt = Field(60, description="seconds to wait for the kernel to start")


_CSS_VALUE = r"^[A-Za-z0-9 .%-]{1,40}$"  # plain CSS lengths/keywords: nothing that escapes the rule


class PageSettings(_Strict):
    size: str = Field("A4", pattern=_CSS_VALUE, description="CSS page size, e.g. A4, letter, 'A4 landscape'")
    margin: str = Field("24mm 16mm 20mm 16mm", pattern=_CSS_VALUE, description="CSS page margins")


class TableOptions(_Strict):
    max_rows: PositiveInt | None = Field(
        None, description="rows shown in the PDF body; the full table is attached as CSV"
    )


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Audience(_Strict):
    """Who may read the published PDFs: portal group names and users' e-mail addresses.

    The portal refuses names it does not know; without an audience a publication inherits
    its report's grants on the portal.
    """

    groups: list[str] = Field([], max_length=100, description="portal group names")
    users: list[str] = Field([], max_length=100, description="e-mail addresses of portal users")

    @field_validator("groups")
    @classmethod
    def _group_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not 1 <= len(name.strip()) <= 80 or any(ord(ch) < 32 for ch in name):
                raise ValueError(f"not a group name: {name!r} (1 to 80 printable characters)")
        return list(dict.fromkeys(n.strip() for n in names))

    @field_validator("users")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        cleaned = [e.strip().lower() for e in emails]
        for email in cleaned:
            if len(email) > 254 or not _EMAIL.match(email):
                raise ValueError(f"not an e-mail address: {email!r}")
        return list(dict.fromkeys(cleaned))


class ReportSpec(_Strict):
    name: str
    path: Path | None = None
    title: str
    description: str = ""
    author: str = "Notebook Press"
    keywords: list[str] = []
    notebook: Path
    template: str = "base.html.j2"
    header_parameters: list[str] = []
    parameters: dict[str, Any] = {}
    timeouts: Timeouts = Timeouts()
    page: PageSettings = PageSettings()
    tables: dict[str, TableOptions] = {}
    audience: Audience | None = None

    @field_validator("template")
    @classmethod
    def _template_is_a_name(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("must be a file name inside templates/")
        return value


def load_spec(path: Path) -> ReportSpec:
    """Load and validate ``path``; the notebook defaults to the spec's name with ``.ipynb``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(path, None, "no such report spec") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise SpecError(path, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(path, None, "expected a mapping of keys at the top level")
    for key in ("name", "path"):
        if key in raw:
            raise SpecError(path, key, "is set from the file name; remove it")
    data = {"title": path.stem.replace("_", " ").title(), **raw, "name": path.stem, "path": path}
    data["notebook"] = path.parent / raw.get("notebook", f"{path.stem}.ipynb")
    try:
        return ReportSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or None
        raise SpecError(path, key, first["msg"]) from None


def spec_for_notebook(notebook: Path) -> ReportSpec:
    """A notebook given directly: use its spec when one sits beside it, else defaults."""
    beside = notebook.with_suffix(".yml")
    if beside.exists():
        return load_spec(beside)
    return ReportSpec(name=notebook.stem, title=notebook.stem.replace("_", " ").title(), notebook=notebook)


def find_report(ref: str, notebooks_dir: Path) -> ReportSpec:
    """Resolve REPORT on the command line: a spec or notebook path, or a name in notebooks/."""
    path = Path(ref)
    if path.suffix in {".yml", ".yaml"}:
        return load_spec(path)
    if path.suffix == ".ipynb":
        if not path.exists():
            raise UsageError(f"{path}: no such notebook")
        return spec_for_notebook(path)
    for candidate in (notebooks_dir / f"{ref}.yml", notebooks_dir / f"{ref}.yaml"):
        if candidate.exists():
            return load_spec(candidate)
    if (notebooks_dir / f"{ref}.ipynb").exists():
        return spec_for_notebook(notebooks_dir / f"{ref}.ipynb")
    known = sorted({p.stem for p in notebooks_dir.glob("*.ipynb")}) if notebooks_dir.is_dir() else []
    hint = f" (known: {', '.join(known)})" if known else ""
    raise UsageError(f"no report named {ref!r} in {notebooks_dir}{hint}")
