"""A report's profile for the portal: its parameter form, its schedule in words, its owners.

The portal builds its "Run" form from this and checks submitted values with the toolkit's
rules (the contract of issue 15). What goes out, per parameter a portal user may set
(:mod:`toolkit.inputs.settable`: the spec's ``run_parameters``, else the shown ones; never a
``Secret``, which the portal never learns exists) in the notebook's cell order: name, label (the
parameter's trailing comment, else its ``show_parameters`` label), type (kind, optional, item, choices), required, and the default
as JSON (the worker's ``-p`` over the spec's ``parameters:`` over the notebook's, as ``nbpress
params`` shows). A request may set only what the form offers.

The schedule goes out as cron, time zone, a sentence ("every Monday at 06:00 (Europe/Berlin)")
and its next fire times in UTC. The sentence follows a small rule for the common crontabs;
anything else is said as the raw cron (a wrong sentence is worse than none).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from ..errors import PublishError
from ..inputs.params import ParamType, Schema, to_jsonable
from ..inputs.prepare import read_inputs
from ..inputs.settable import settable_parameters
from ..inputs.spec import ReportSpec, Schedule
from .run_reports import PortalRuns

__all__ = ["report_profile", "parameter_schema", "form_names", "schedule_text", "send_profiles", "MAX_NEXT_RUNS"]

log = logging.getLogger("nbpress.profile")
MAX_NEXT_RUNS = 10  # the portal keeps at most this many
MAX_LABEL, MAX_TITLE = 500, 200  # the portal's bounds
_DAYS = {"MON": "Monday", "TUE": "Tuesday", "WED": "Wednesday", "THU": "Thursday", "FRI": "Friday",
         "SAT": "Saturday", "SUN": "Sunday"}
_WEEK = list(_DAYS)


def _type_json(ptype: ParamType) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": ptype.kind, "optional": ptype.optional}
    if ptype.kind == "list" and ptype.item is not None:
        found["item"] = _type_json(ptype.item)
    if ptype.kind == "literal":
        found["choices"] = list(ptype.choices)
    return found


def form_names(spec: ReportSpec, schema: Schema) -> set[str]:
    """The parameters a run request may set: those the profile's form offers
    (:func:`toolkit.inputs.settable.settable_parameters`: never a Secret, by default no location)."""
    return {p.name for p in settable_parameters(spec, schema)}


def parameter_schema(spec: ReportSpec, schema: Schema, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The form's parameters in cell order; defaults: ``values`` (the worker's ``-p``) over the
    spec's over the notebook's."""
    defaults = {**spec.parameters, **(values or {})}
    shown_labels = spec.show_parameters or {}  # what readers see the value called in the PDF
    fields = []
    for p in settable_parameters(spec, schema):
        label = p.help or shown_labels.get(p.name, "")
        entry: dict[str, Any] = {"name": p.name, "label": label[:MAX_LABEL], "type": _type_json(p.type)}
        if p.name in defaults:  # a spec default makes a required notebook parameter optional
            entry["required"], entry["default"] = False, to_jsonable(schema.check(p.name, defaults[p.name]))
        elif p.required:
            entry["required"] = True
        else:
            entry["required"], entry["default"] = False, to_jsonable(p.default)
        fields.append(entry)
    return fields


def _days(field: str) -> str | None:
    """MON / MON-FRI / MON,WED,FRI / * in words; None for anything else (numbers included:
    APScheduler 3 counts them from Monday, crontab from Sunday, so no sentence risks it)."""
    if field == "*":
        return "day"
    upper = field.upper()
    if upper in _DAYS:
        return _DAYS[upper]
    start, dash, end = upper.partition("-")
    if dash and start in _DAYS and end in _DAYS and _WEEK.index(start) < _WEEK.index(end):
        return f"{_DAYS[start]} to {_DAYS[end]}"
    names = upper.split(",")
    if len(names) > 1 and all(n in _DAYS for n in names):
        return ", ".join(_DAYS[n] for n in names[:-1]) + f" and {_DAYS[names[-1]]}"
    return None


def _times(minute: str, hour: str) -> str | None:
    """06:00, or 06:00 and 18:00; None when either field is more than numbers."""
    if not minute.isdigit() or not all(h.isdigit() for h in hour.split(",")):
        return None
    shown = [f"{int(h):02d}:{int(minute):02d}" for h in hour.split(",")]
    return ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]


def schedule_text(schedule: Schedule) -> str:
    """The schedule in words, e.g. "every Monday at 06:00 (Europe/Berlin)"; the raw cron otherwise."""
    minute, hour, day, month, weekday = schedule.cron.split()
    zone = f"({schedule.timezone})"
    times = _times(minute, hour)
    if times is not None and month == "*":
        if day == "*" and (days := _days(weekday)) is not None:
            return f"every {days} at {times} {zone}"
        if weekday == "*" and day.isdigit():
            return f"on day {int(day)} of every month at {times} {zone}"
    if minute.isdigit() and hour == "*" and day == month == weekday == "*":
        return f"every hour at minute {int(minute)} {zone}"
    return f"cron '{schedule.cron}' {zone}"


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _runnable(spec: ReportSpec, schema: Schema, values: Mapping[str, Any]) -> bool:
    """A request can run the report when every parameter that needs a value gets one: from the
    form, a default (the spec's, the worker's ``-p``) or, for a Secret, the worker's environment."""
    offered = form_names(spec, schema)
    given = {**spec.parameters, **values}
    return all(p.name in offered or p.type.secret or not p.required or p.name in given for p in schema.parameters)


def report_profile(spec: ReportSpec, *, values: Mapping[str, Any] | None = None,
                   now: dt.datetime | None = None) -> dict[str, Any]:
    """The body of ``PUT /api/v1/reports/<name>/profile`` for ``spec`` (``values``: the worker's ``-p``)."""
    from ..scheduler.jobs import next_fire_times  # APScheduler's triggers: only for a schedule

    inputs = read_inputs(spec)  # the spec checked against its notebook, as before any run
    schedule: dict[str, str] = {}
    next_runs: list[str] = []
    if spec.schedule is not None:
        schedule = {"cron": spec.schedule.cron, "timezone": spec.schedule.timezone, "text": schedule_text(spec.schedule)}
        next_runs = [_utc(t) for t in next_fire_times(spec.schedule, MAX_NEXT_RUNS, now)]
    return {
        "title": spec.title[:MAX_TITLE],
        "parameters": parameter_schema(spec, inputs.schema, values),
        "schedule": schedule,
        "next_runs": next_runs,
        "owners": [spec.owner] if spec.owner else [],
        "runnable": _runnable(spec, inputs.schema, values or {}),
    }


def send_profiles(portal: PortalRuns, specs: list[ReportSpec], values: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> list[ReportSpec]:
    """Send each spec's profile; returns the specs the portal did not take (to send again later).

    A refusal is a warning line per report, except a 401: a token the portal does not know stops
    everything that would follow. A portal that cannot be reached is tried for the first report
    only: the others would wait as long for the same answer."""
    unsent: list[ReportSpec] = []
    for index, spec in enumerate(specs):
        try:
            portal.put_profile(spec.name, report_profile(spec, values=(values or {}).get(spec.name)))
        except PublishError as exc:
            if exc.status == 401:
                raise
            if exc.status is None:
                log.warning("profiles not sent to the portal: %s", exc)
                return unsent + specs[index:]
            log.warning("%s: profile not sent to the portal: %s", spec.name, exc)
            unsent.append(spec)
    return unsent
