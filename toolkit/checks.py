"""Data checks: conditions on a run's records that must hold before anything is published.

A spec lists them under ``checks``; they run after the notebook has executed and before the
report is rendered, on the same records the template would show::

    checks:
      - table: weekly_summary
        min_rows: 7                 # at least 7 rows
      - table: per_source
        not_null: [median_duration_ms]
      - metric: error_rate
        min: 0
        max: 15                     # bounds are inclusive

A failed check does not mean the notebook is wrong (it ran to the end), but that the data is
not fit to send: the run is marked ``blocked``, nothing is rendered or published, and the
report's owner is told which checks failed (see :mod:`toolkit.deliver.owner_notice`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

if TYPE_CHECKING:  # records load nbformat (seconds), run.json's models pydantic schemas: a spec needs neither
    from .notebook import records as rec
    from .runs.run_folder import CheckResult

__all__ = ["DataCheck", "run_checks"]


class DataCheck(BaseModel):
    """One check: on a table (``min_rows``, ``not_null``) or on a metric (``min``, ``max``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str | None = Field(None, description="name of a recorded table")
    metric: str | None = Field(None, description="name of a recorded metric")
    min_rows: NonNegativeInt | None = Field(None, description="the table has at least this many rows")
    not_null: list[str] = Field([], description="columns (or the index name) with no missing values")
    min: float | None = Field(None, description="the metric is at least this (inclusive)")
    max: float | None = Field(None, description="the metric is at most this (inclusive)")

    @model_validator(mode="after")
    def _one_subject(self) -> DataCheck:
        if (self.table is None) == (self.metric is None):
            raise ValueError("name exactly one of 'table' or 'metric'")
        if self.table is not None:
            if self.min is not None or self.max is not None:
                raise ValueError("min/max apply to a metric; for a table use min_rows or not_null")
            if self.min_rows is None and not self.not_null:
                raise ValueError(f"table {self.table!r}: say what to check (min_rows, not_null)")
        else:
            if self.min_rows is not None or self.not_null:
                raise ValueError("min_rows/not_null apply to a table; for a metric use min or max")
            if self.min is None and self.max is None:
                raise ValueError(f"metric {self.metric!r}: say what to check (min, max)")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"metric {self.metric!r}: min {self.min:g} is above max {self.max:g}")
        return self

    def describe(self) -> str:
        if self.table is not None:
            parts = []
            if self.min_rows is not None:
                parts.append(f"at least {self.min_rows} rows")
            if self.not_null:
                parts.append(f"no missing values in {', '.join(self.not_null)}")
            return f"table {self.table}: " + " and ".join(parts)
        if self.min is not None and self.max is not None:
            return f"metric {self.metric}: between {self.min:g} and {self.max:g}"
        if self.min is not None:
            return f"metric {self.metric}: at least {self.min:g}"
        return f"metric {self.metric}: at most {self.max:g}"


def _check_table(check: DataCheck, record: rec.Record | None) -> str | None:
    """None when the check holds, else what is wrong."""
    if getattr(record, "kind", None) != "table":
        return f"no table named {check.table!r} was recorded"
    frame = record.frame
    problems = []
    if check.min_rows is not None and len(frame) < check.min_rows:
        problems.append(f"{len(frame)} rows")
    for column in check.not_null:
        if column in frame.columns:
            missing = int(frame[column].isna().sum())
        elif column == frame.index.name:
            missing = int(frame.index.isna().sum())
        else:
            problems.append(f"no column {column!r}")
            continue
        if missing:
            problems.append(f"{missing} missing in {column}")
    return "; ".join(problems) or None


def _check_metric(check: DataCheck, record: rec.Record | None) -> str | None:
    if getattr(record, "kind", None) != "metric":
        return f"no metric named {check.metric!r} was recorded"
    value: Any = record.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"value {value!r} is not a number"
    if check.min is not None and value < check.min:
        return f"value {value:g}"
    if check.max is not None and value > check.max:
        return f"value {value:g}"
    return None


def run_checks(checks: Iterable[DataCheck], records: dict[str, rec.Record]) -> list[CheckResult]:
    """Evaluate every check (all of them, so the owner hears about every problem at once)."""
    from .runs.run_folder import CheckResult

    results = []
    for check in checks:
        if check.table is not None:
            problem = _check_table(check, records.get(check.table))
        else:
            problem = _check_metric(check, records.get(check.metric))
        results.append(CheckResult(check=check.describe(), passed=problem is None, detail=problem or ""))
    return results
