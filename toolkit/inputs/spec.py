"""Report specs: the small YAML file beside a notebook (``notebooks/<name>.yml``).

A spec names the notebook, the template, the title and metadata, parameter defaults, page
settings and timeouts. Errors name the file and the key (``weekly.yml: timeouts.cell: ...``).
A notebook without a spec is still a report, with defaults taken from its file name.

For unattended operation a spec may also carry::

    grid:                       # run every combination (see toolkit.inputs.grid)
      region: [north, south]
      week: last 4              # the Mondays of the 4 weeks that ended before the as-of day
    variant_by: [region]        # the parameters that make a variant: on the portal north and south
                                #   are variants of one report, each with its own periods and versions
    schedule:                   # for `nbpress schedule` (5-field crontab, IANA time zone)
      cron: "0 6 * * MON"
      timezone: Europe/Berlin
      misfire_grace: 3600       # a fire time missed by up to this many seconds still runs
    audience:
      groups: [managers]        # receive every variant
      by:                       # plus, per grid value, the groups of that variant only (with
        region: {north: [north-team], south: [south-team]}  # variant_by: grants of that variant)
    retries: {max: 2, backoff: 60}   # transient failures of scheduled runs only; or `retries: 2`
    owner: analyst@example.com  # told when a run is blocked or a scheduled run fails
    checks: [...]               # data checks on the records (see toolkit.checks)
    preload: [pandas, matplotlib.pyplot, sqlalchemy]  # imported once by the batch fork server
    show_parameters:            # the parameters the PDF shows, in this order, with these labels
      week: Week                #   (default: all but URLs, filesystem paths and secret-looking names)
      region: Region
    run_parameters: [week, region]  # what a portal user may set when asking for a run (default: the
                                #   shown parameters; the others keep the spec's or the worker's values)
    secrets:                    # where a `Secret` parameter's value comes from (default NBPRESS_SECRET_<NAME>)
      db_password: {env: WAREHOUSE_PASSWORD}
    locale: de_DE               # numbers, dates and the fixed words of the PDF (default en; see toolkit.render.locale)
    missing_glyphs: fail        # a character no font can draw fails the render (default: warn)
    lang: de                    # the document language (BCP 47), for screen readers and hyphenation
    pdf_variant: pdf/a-3b       # an archival (PDF/A-3) or accessible (PDF/UA-1) PDF; see PDF_VARIANTS
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError,
                      field_validator, model_serializer, model_validator)

from ..checks import DataCheck
from ..errors import SpecError, UsageError
from ..render.locale import DEFAULT_LOCALE, check_locale
from .grid import parse_grid_value
from .period import fields

__all__ = ["PDF_VARIANTS", "ReportSpec", "SecretSource", "Audience", "Schedule", "Retries", "Timeouts", "PageSettings", "TableOptions", "load_spec", "find_report"]


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
    formats: dict[str, str] = Field(
        {}, description='column -> format ("{:,.2f}", "{:.1%}", "{:,.0f} €" or just ",.2f"); '
                        "over the notebook's tk.table(formats=...); default: the notebook's precision"
    )

    @field_validator("formats")
    @classmethod
    def _formats(cls, formats: dict[str, str]) -> dict[str, str]:
        from ..render.cells import check_format

        return {column: check_format(text) for column, text in formats.items()}


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Audience(_Strict):
    """Who may read the published PDFs: portal group names and users' e-mail addresses.

    The portal refuses names it does not know; without an audience a publication inherits
    its report's grants on the portal.
    """

    groups: list[str] = Field([], max_length=100, description="portal group names")
    users: list[str] = Field([], max_length=100, description="e-mail addresses of portal users")
    by: dict[str, dict[str, list[str]]] = Field(
        {}, description="parameter -> value -> extra groups that receive that variant"
    )

    @field_validator("groups")
    @classmethod
    def _group_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not 1 <= len(name.strip()) <= 80 or any(ord(ch) < 32 for ch in name):
                raise ValueError(f"not a group name: {name!r} (1 to 80 printable characters)")
        return list(dict.fromkeys(n.strip() for n in names))

    @field_validator("by", mode="before")
    @classmethod
    def _mapping(cls, by: Any) -> Any:
        if not isinstance(by, dict):
            return by
        checked = {}
        for param, values in by.items():
            if not isinstance(values, dict):
                raise ValueError(f"{param}: expected a mapping of values to group lists")
            # YAML reads `2026-11-16:` as a date: compare values as run.json shows them.
            checked[str(param)] = {_value_key(v): cls._group_names(list(g or [])) for v, g in values.items()}
        return checked

    @model_serializer(mode="wrap")
    def _drop_empty_mapping(self, handler):
        data = handler(self)
        if not data.get("by"):
            data.pop("by", None)  # run.json and the portal's metadata stay as they were without one
        return data

    def for_values(self, parameters: dict[str, Any]) -> dict[str, list[str]]:
        """The audience of one variant: the common groups plus those mapped from its values."""
        groups = list(self.groups)
        for param, mapping in self.by.items():
            if param in parameters:
                groups.extend(mapping.get(_value_key(parameters[param]), []))
        return {"groups": list(dict.fromkeys(groups)), "users": list(self.users)}

    @field_validator("users")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        cleaned = [e.strip().lower() for e in emails]
        for email in cleaned:
            if len(email) > 254 or not _EMAIL.match(email):
                raise ValueError(f"not an e-mail address: {email!r}")
        return list(dict.fromkeys(cleaned))


def _value_key(value: Any) -> str:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


class Schedule(_Strict):
    """When ``nbpress schedule`` runs the report: a 5-field crontab in an IANA time zone."""

    cron: str = Field(description="minute hour day month weekday, e.g. '0 6 * * MON'")
    timezone: str = Field("UTC", description="IANA time zone the cron fields are read in")
    misfire_grace: PositiveInt = Field(
        3600, description="seconds after a missed fire time (daemon down) during which it still runs once"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as Europe/Berlin)") from None
        return value

    @model_validator(mode="after")
    def _cron(self) -> Schedule:
        self.trigger()
        return self

    def trigger(self):
        """The APScheduler trigger (imported here: only schedules pay for APScheduler)."""
        from apscheduler.triggers.cron import CronTrigger

        if len(self.cron.split()) != 5:
            raise ValueError(f"cron: expected 5 fields (minute hour day month weekday), got {self.cron!r}")
        try:
            return CronTrigger.from_crontab(self.cron, timezone=zoneinfo.ZoneInfo(self.timezone))
        except ValueError as exc:
            raise ValueError(f"cron: {exc}") from None


class NotifySettings(_Strict):
    """What the portal's notification mails say about a new publication of this report."""

    summary: str | None = Field(None, max_length=1000, description=(
        "one-line summary: a Jinja template over params, period and metrics (the notebook's metric records), "
        'e.g. "{{ metrics.orders }} orders in {{ period }}"; rendered at most 300 characters'))
    attach_pdf: bool = Field(False, description="attach the PDF to the mails (the portal caps the size)")

    @field_validator("summary")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        from .summary import check_template  # jinja2's sandbox, only for specs that use it

        return None if value is None else check_template(value)


class Retries(_Strict):
    """How often a scheduled run that failed for a transient reason is tried again."""

    max: NonNegativeInt = Field(0, le=10, description="retries after the first attempt")
    backoff: PositiveFloat = Field(30.0, description="seconds before the first retry; doubles each time")


class SecretSource(_Strict):
    """Where a ``Secret`` parameter's value comes from: an environment variable of the run's process."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", description="environment variable holding the value")


# PDF/A-3 only: PDF/A-1 and PDF/A-2 forbid the CSV files attached when a table is cut at max_rows.
PDF_VARIANTS = ("pdf/a-3b", "pdf/a-3u", "pdf/a-3a", "pdf/ua-1")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")  # a BCP 47 tag: en, de, de-CH, zh-Hant-TW

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


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
    show_parameters: dict[str, str] | None = Field(
        None, description="parameters the PDF shows, in order: name -> label (default: all but URLs, paths, secrets)"
    )
    run_parameters: list[str] | None = Field(
        None, description="parameters a portal user may set when asking for a run (default: the shown ones)"
    )
    period: str | None = Field(None, max_length=200, description='label of the period a run covers, e.g. "{week:%G-W%V}"')
    parameters: dict[str, Any] = {}
    timeouts: Timeouts = Timeouts()
    page: PageSettings = PageSettings()
    tables: dict[str, TableOptions] = {}
    audience: Audience | None = None
    grid: dict[str, Any] = {}
    variant_by: list[str] = Field([], max_length=10, description="parameters whose values name a run's variant, e.g. [region]")
    schedule: Schedule | None = None
    retries: Retries = Retries()
    notify: NotifySettings = NotifySettings()
    owner: str | None = None
    checks: list[DataCheck] = []
    preload: list[str] = []
    secrets: dict[str, SecretSource] = {}
    locale: str = Field(DEFAULT_LOCALE, description="numbers, dates and fixed words of the PDF, e.g. de_DE (Babel names)")
    missing_glyphs: Literal["warn", "fail"] = Field(
        "warn", description="a character no font can draw: warn (named in run.json and on stderr) or fail the render"
    )
    lang: str = Field("en", description="the document's language as a BCP 47 tag, e.g. de or en-GB (default: from locale)")
    pdf_variant: str | None = Field(None, description="PDF/A-3 (archival) or PDF/UA-1 (accessible): one of PDF_VARIANTS")

    @field_validator("lang")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        if not _LANG.match(value):
            raise ValueError(f"not a language tag: {value!r} (expected a BCP 47 tag such as en, de or de-CH)")
        return value

    @field_validator("pdf_variant")
    @classmethod
    def _variant(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in PDF_VARIANTS:
            raise ValueError(f"unknown PDF variant {value!r} (allowed: {', '.join(PDF_VARIANTS)})")
        return value.lower()

    @model_validator(mode="before")
    @classmethod
    def _lang_from_locale(cls, data: Any) -> Any:
        # A German locale without a `lang` makes a German document, not an English one.
        if isinstance(data, dict) and "lang" not in data and isinstance(data.get("locale"), str):
            data = {**data, "lang": data["locale"].replace("_", "-")}
        return data

    @field_validator("grid", mode="before")
    @classmethod
    def _grid(cls, grid: Any) -> Any:
        if not isinstance(grid, dict):
            return grid
        return {str(k): parse_grid_value(v) for k, v in grid.items()}

    @field_validator("variant_by", mode="before")
    @classmethod
    def _variant_names(cls, names: Any) -> Any:
        if isinstance(names, str):
            names = [names]  # `variant_by: region` reads as the list it means
        if not isinstance(names, list):
            return names
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"not a parameter name: {name!r}")
        if len(set(names)) != len(names):
            raise ValueError("names a parameter twice")
        return names

    @model_validator(mode="after")
    def _audience_by_follows_variants(self) -> ReportSpec:
        # With variants, audience.by becomes grants of a variant: it may only look at what makes one.
        if self.variant_by and self.audience:
            for key in self.audience.by:
                if key not in self.variant_by:
                    raise ValueError(f"audience.by.{key}: not in variant_by {self.variant_by} (a variant's readers follow from its variant)")
        return self

    def variant_of(self, parameters: dict[str, Any]) -> dict[str, str]:
        """A run's variant: ``variant_by``'s values as readers see them (strings; dates as ISO)."""
        return {name: " ".join(_value_key(parameters[name]).split()) for name in self.variant_by if name in parameters}

    @field_validator("retries", mode="before")
    @classmethod
    def _retries_shorthand(cls, value: Any) -> Any:
        return {"max": value} if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if len(value) > 254 or not _EMAIL.match(value):
            raise ValueError(f"not an e-mail address: {value!r}")
        return value

    @field_validator("preload")
    @classmethod
    def _modules(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _MODULE.match(name):
                raise ValueError(f"not a module name: {name!r}")
        return names

    @field_validator("period")
    @classmethod
    def _period_template(cls, value: str | None) -> str | None:
        if value is not None:
            fields(value)  # ValueError names the bad field
        return value

    @field_validator("show_parameters")
    @classmethod
    def _labels(cls, shown: dict[str, str] | None) -> dict[str, str] | None:
        if shown is None:
            return None
        for name, label in shown.items():
            if not name.isidentifier():
                raise ValueError(f"not a parameter name: {name!r}")
            if not 1 <= len(label.strip()) <= 80 or any(ord(ch) < 32 for ch in label):
                raise ValueError(f"{name}: the label must be 1 to 80 printable characters, got {label!r}")
        return {name: label.strip() for name, label in shown.items()}

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)

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
