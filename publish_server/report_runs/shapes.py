"""The bodies the worker sends and the answers it gets (pydantic, strict: unknown keys are a 400).

Sizes are bounded so that a profile or run record cannot grow a page or a row without limit:
at most 200 parameters, 100 choices, 10 next fire times, 100 owners; names are identifiers;
text has no control characters (it reaches pages, mails and logs).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..publishing import MAX_PARAMETER_VALUE, MAX_PARAMETERS, REPORT_SLUG, mask_url_passwords
from ..text import first_control

__all__ = [
    "ParamTypeIn", "ParameterIn", "ScheduleIn", "ProfileIn", "ProfileOut", "RunLogIn", "RunLogOut",
    "ClaimIn", "ClaimedRequest", "ClaimOut", "ProgressIn", "ProgressOut", "FinishIn", "FinishOut",
    "RUN_ID", "PUBLIC_ID", "parse_instant",
]

MAX_PROFILE_PARAMETERS, MAX_CHOICES, MAX_NEXT_RUNS, MAX_OWNERS = 200, 100, 10, 100
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # as publishing's run ids
PUBLIC_ID = r"^[A-Za-z0-9_-]{1,32}$"
_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_STRICT = ConfigDict(extra="forbid", strict=True)


def _printable(value: str) -> str:
    if first_control(value) is not None:
        raise ValueError("must not contain control characters")
    return value


def _json_size(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value))


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant as naive UTC (how times are stored); one without a zone is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {text[:40]!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def _instant(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 40:
        raise ValueError("a date-time has at most 40 characters")
    parse_instant(value)
    return value


Scalar = str | int | float | bool


class ParamTypeIn(BaseModel):
    model_config = _STRICT

    kind: Literal["str", "int", "float", "bool", "date", "datetime", "list", "literal"]
    optional: bool = False
    item: ParamTypeIn | None = Field(None, description="the type of a list's items (kind list only)")
    choices: list[Scalar] | None = Field(None, max_length=MAX_CHOICES, description="the allowed values (kind literal only)")

    @field_validator("choices")
    @classmethod
    def _short_choices(cls, choices: list[Scalar] | None) -> list[Scalar] | None:
        for choice in choices or ():
            if isinstance(choice, str) and len(_printable(choice)) > 200:
                raise ValueError("a choice has at most 200 characters")
        return choices

    @model_validator(mode="after")
    def _parts_fit_the_kind(self) -> ParamTypeIn:
        if (self.kind == "list") != (self.item is not None):
            raise ValueError("item goes with kind list, and kind list needs it")
        if (self.kind == "literal") != (self.choices is not None):
            raise ValueError("choices go with kind literal, and kind literal needs them")
        if self.item is not None and self.item.kind == "list":
            raise ValueError("a list of lists is not a parameter type")
        return self


class ParameterIn(BaseModel):
    model_config = _STRICT

    name: str = Field(pattern=_IDENTIFIER, description="the notebook's variable name")
    label: str = Field("", max_length=500, description="the parameter's help (its trailing comment), or empty")
    type: ParamTypeIn
    required: bool = False
    default: Any = Field(None, description="a JSON value (dates ISO); absent when required")

    check_printable_label = field_validator("label")(classmethod(lambda cls, v: _printable(v)))

    @field_validator("default")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if _json_size(value) > MAX_PARAMETER_VALUE:
            raise ValueError(f"a default has at most {MAX_PARAMETER_VALUE:,} characters (as JSON)")
        return mask_url_passwords(value) if isinstance(value, str) else value


class ScheduleIn(BaseModel):
    model_config = _STRICT

    cron: str | None = Field(None, max_length=120)
    timezone: str | None = Field(None, max_length=64)
    text: str | None = Field(None, max_length=300, description="the schedule in words, as readers see it")

    check_printable_text = field_validator("cron", "timezone", "text")(classmethod(lambda cls, v: v if v is None else _printable(v)))


class ProfileIn(BaseModel):
    """What the toolkit tells the portal about a report (PUT /api/v1/reports/<slug>/profile)."""

    model_config = _STRICT

    title: str | None = Field(None, min_length=1, max_length=200, description="used when the report is created")
    parameters: list[ParameterIn] = Field(default_factory=list, max_length=MAX_PROFILE_PARAMETERS,
                                          description="in the notebook's cell order; secret parameters left out")
    schedule: ScheduleIn = Field(default_factory=ScheduleIn, description="{} when unscheduled")
    next_runs: list[str] = Field(default_factory=list, max_length=MAX_NEXT_RUNS, description="next fire times, ISO 8601")
    owners: list[str] = Field(default_factory=list, max_length=MAX_OWNERS, description="e-mail addresses of the report's owners")
    runnable: bool = Field(True, description="false: its spec cannot run from a request")

    check_printable_title = field_validator("title")(classmethod(lambda cls, v: v if v is None else _printable(v.strip())))

    @field_validator("parameters")
    @classmethod
    def _unique_names(cls, parameters: list[ParameterIn]) -> list[ParameterIn]:
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError("parameter names must be unique")
        return parameters

    @field_validator("next_runs")
    @classmethod
    def _instants(cls, values: list[str]) -> list[str]:
        return [_instant(v) for v in values]

    @field_validator("owners")
    @classmethod
    def _emails(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in values]
        for email in cleaned:
            if len(email) > 254 or not _EMAIL.match(email) or first_control(email) is not None:
                raise ValueError(f"not an e-mail address: {email[:80]!r}")
        return list(dict.fromkeys(cleaned))


class ProfileOut(BaseModel):
    report: str
    updated_at: str = Field(json_schema_extra={"format": "date-time"})


class RunLogIn(BaseModel):
    """One run as the toolkit saw it (POST /api/v1/reports/<slug>/runs); sent again, it updates the record."""

    model_config = _STRICT

    run_id: str = Field(pattern=RUN_ID)
    status: Literal["running", "succeeded", "failed", "blocked", "cancelled"]
    trigger: Literal["schedule", "request", "manual", "batch"]
    started_at: str = Field(description="ISO 8601")
    finished_at: str | None = Field(None, description="ISO 8601")
    duration_seconds: float | None = Field(None, ge=0, le=10 * 365 * 86400)
    error_line: str = Field("", max_length=500)
    parameters: dict[str, Any] = Field(default_factory=dict, description="as shown to readers")
    request: str | None = Field(None, pattern=PUBLIC_ID, description="the run request this run serves")
    publication: str | None = Field(None, pattern=PUBLIC_ID, description="the publication it made")

    check_times = field_validator("started_at", "finished_at")(classmethod(lambda cls, v: _instant(v)))
    check_printable_error = field_validator("error_line")(classmethod(lambda cls, v: _printable(v)))

    @field_validator("parameters")
    @classmethod
    def _bounded(cls, params: dict[str, Any]) -> dict[str, Any]:
        if len(params) > MAX_PARAMETERS:
            raise ValueError(f"at most {MAX_PARAMETERS} parameters, not {len(params)}")
        for name, value in params.items():
            if len(name) > 100 or _json_size(value) > MAX_PARAMETER_VALUE:
                raise ValueError(f"{name[:40]!r}: names of at most 100 characters, values of at most {MAX_PARAMETER_VALUE:,}")
        return {k: mask_url_passwords(v) if isinstance(v, str) else v for k, v in params.items()}


class RunLogOut(BaseModel):
    report: str
    run_id: str
    status: str


_WORKER = Field(min_length=1, max_length=64, description='who works on it, e.g. "host:pid"')


class ClaimIn(BaseModel):
    model_config = _STRICT

    worker: str = _WORKER
    reports: list[str] | None = Field(None, max_length=500, description="only these reports (slugs)")

    check_printable_worker = field_validator("worker")(classmethod(lambda cls, v: _printable(v)))

    @field_validator("reports")
    @classmethod
    def _slugs(cls, values: list[str] | None) -> list[str] | None:
        for slug in values or ():
            if not re.fullmatch(REPORT_SLUG, slug):
                raise ValueError(f"not a report slug: {slug[:70]!r}")
        return values


class ClaimedRequest(BaseModel):
    id: str
    report: str
    parameters: dict[str, Any]
    attempt: int = Field(ge=1)
    lease_seconds: int
    requested_by: str = Field(description='the requester\'s display name, or "a recipient" (never the address)')


class ClaimOut(BaseModel):
    request: ClaimedRequest


class ProgressIn(BaseModel):
    model_config = _STRICT

    worker: str = _WORKER
    stage: str = Field(pattern=r"^[a-z][a-z_-]{0,31}$", description="execute, check, render, publish, ...")


class ProgressOut(BaseModel):
    cancel: bool = Field(description="the requester cancelled: stop the run and finish it cancelled")
    lease_seconds: int


class FinishIn(BaseModel):
    model_config = _STRICT

    worker: str = _WORKER
    status: Literal["succeeded", "failed", "cancelled"]
    run_id: str | None = Field(None, pattern=RUN_ID)
    publication: str | None = Field(None, pattern=PUBLIC_ID, description="the publication the run made (succeeded)")
    error_line: str = Field("", max_length=500)
    transient: bool = Field(False, description="failed for a passing reason (a lost kernel, a database away): try again")

    check_printable_error = field_validator("error_line")(classmethod(lambda cls, v: _printable(v)))


class FinishOut(BaseModel):
    status: Literal["queued", "succeeded", "failed", "cancelled"] = Field(description="queued: taken back for another try")
