"""Deterministic demo event log for the ``weekly_statistics`` example report.

``generate()`` writes a SQLite file with one table, ``events``, that looks like an application's
request log: five sources, seven categories, a skewed ok/error/timeout mix per source, log-normal
payload sizes and durations, weekday/weekend and time-of-day seasonality, a mild upward trend and
one short incident. The same ``seed``, ``end``, ``weeks`` and ``rows`` always give the same table
contents, so demo reports and tests are reproducible.

Schema (``ts`` is TEXT so the same queries work on SQLite and PostgreSQL; ISO strings in UTC
compare lexicographically)::

    events(id INTEGER PRIMARY KEY, ts TEXT, source TEXT, category TEXT, status TEXT,
           size_bytes INTEGER, duration_ms REAL, user_id INTEGER)
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DemoSummary", "generate", "week_starts", "SOURCES", "CATEGORIES", "STATUSES"]

SOURCES = ("web", "api", "batch", "mobile", "partner")
CATEGORIES = ("signup", "login", "search", "purchase", "refund", "support", "export")
STATUSES = ("ok", "error", "timeout")

# Share of traffic per source on weekdays and at weekends: people use the mobile app at the
# weekend, while partner integrations and API clients follow business days.
_SOURCE_P_WEEKDAY = np.array([0.37, 0.27, 0.05, 0.20, 0.11])
_SOURCE_P_WEEKEND = np.array([0.33, 0.20, 0.07, 0.34, 0.06])

# Category mix per source (rows follow SOURCES, columns follow CATEGORIES).
_CATEGORY_P = np.array(
    [
        [0.05, 0.25, 0.35, 0.15, 0.03, 0.12, 0.05],  # web
        [0.01, 0.10, 0.45, 0.25, 0.06, 0.01, 0.12],  # api
        [0.00, 0.00, 0.05, 0.05, 0.15, 0.00, 0.75],  # batch: mostly exports and refund runs
        [0.06, 0.35, 0.30, 0.18, 0.03, 0.06, 0.02],  # mobile
        [0.02, 0.08, 0.30, 0.40, 0.12, 0.02, 0.06],  # partner
    ]
)

# (error, timeout) probabilities per source; ok is the rest. Partner links are the flakiest.
_FAILURE_P = np.array(
    [
        [0.018, 0.004],  # web
        [0.030, 0.008],  # api
        [0.045, 0.020],  # batch
        [0.025, 0.012],  # mobile
        [0.060, 0.035],  # partner
    ]
)

# Log-normal parameters per category: median duration (ms) and sigma; median size (bytes) and sigma.
_DURATION_MEDIAN = np.array([240.0, 60.0, 110.0, 420.0, 380.0, 650.0, 2400.0])
_DURATION_SIGMA = np.array([0.55, 0.45, 0.70, 0.60, 0.60, 0.80, 0.90])
_SIZE_MEDIAN = np.array([3_000.0, 900.0, 12_000.0, 6_000.0, 4_000.0, 20_000.0, 1_500_000.0])
_SIZE_SIGMA = np.array([0.5, 0.3, 0.9, 0.6, 0.6, 1.1, 1.3])

# Relative volume Monday..Sunday.
_WEEKDAY_FACTOR = np.array([1.00, 1.06, 1.05, 1.02, 0.92, 0.55, 0.48])

# Hour-of-day profiles (UTC): interactive traffic peaks in the European afternoon, batch jobs run
# at night.
_HOURS = np.arange(24)
_INTERACTIVE_HOURS = 0.15 + np.exp(-0.5 * ((_HOURS - 14.5) / 4.0) ** 2)
_INTERACTIVE_HOURS /= _INTERACTIVE_HOURS.sum()
_BATCH_HOURS = 0.02 + np.exp(-0.5 * ((_HOURS - 2.5) / 1.2) ** 2)
_BATCH_HOURS /= _BATCH_HOURS.sum()

_TIMEOUT_MS = 30_000.0  # gateway timeout: timed-out requests last about this long
_SERVICE_ACCOUNTS = 12  # batch jobs run as a handful of service users (ids 1..12)
_FIRST_HUMAN_ID = 1_000


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` wrote."""

    path: Path
    rows: int
    first_day: dt.date
    last_day: dt.date
    weeks: list[dt.date]  # Monday of each week, ascending


def _sunday_on_or_before(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def week_starts(last_day: dt.date, n: int) -> list[dt.date]:
    """Mondays of the ``n`` complete ISO weeks ending at ``last_day`` (ascending).

    A ``last_day`` that is not a Sunday is moved back to the Sunday on or before it, so the
    week containing it (incomplete) is not counted.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    last_monday = _sunday_on_or_before(last_day) - dt.timedelta(days=6)
    return [last_monday - dt.timedelta(weeks=k) for k in range(n - 1, -1, -1)]


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row from a per-row probability matrix (inverse CDF, vectorized)."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0  # guard against rounding so every draw lands in a bucket
    u = rng.random(len(probs))
    return (u[:, None] >= cum).sum(axis=1)


def _events(rng: np.random.Generator, first_day: dt.date, n_days: int, rows: int) -> dict[str, np.ndarray]:
    # Daily volume: weekday pattern x mild growth (~25% over the period) x a little day-to-day noise.
    day_idx = np.arange(n_days)
    weekday = (first_day.weekday() + day_idx) % 7
    trend = 1.0 + 0.25 * day_idx / max(n_days - 1, 1)
    noise = rng.normal(1.0, 0.04, n_days).clip(0.8, 1.2)
    day_weight = _WEEKDAY_FACTOR[weekday] * trend * noise
    per_day = rng.multinomial(rows, day_weight / day_weight.sum())
    day = np.repeat(day_idx, per_day)
    weekend = weekday[day] >= 5

    source = _pick(rng, np.where(weekend[:, None], _SOURCE_P_WEEKEND, _SOURCE_P_WEEKDAY))
    is_batch = source == SOURCES.index("batch")

    hour = rng.choice(24, size=rows, p=_INTERACTIVE_HOURS)
    hour[is_batch] = rng.choice(24, size=int(is_batch.sum()), p=_BATCH_HOURS)
    second_of_day = hour * 3600 + rng.integers(0, 3600, rows)

    category = _pick(rng, _CATEGORY_P[source])

    # Failures: per-source base rates, a bit worse at the daily peak, and one incident (an API
    # outage of a few hours on a weekday in the second half) so the charts have something to show.
    fail_p = _FAILURE_P[source] * np.where((hour >= 13) & (hour <= 16), 1.3, 1.0)[:, None]
    weekdays = day_idx[(weekday < 5) & (day_idx >= n_days // 2)]
    incident_day = int(rng.choice(weekdays)) if len(weekdays) else -1
    incident = (day == incident_day) & (hour >= 9) & (hour < 12) & np.isin(source, [SOURCES.index("api"), SOURCES.index("partner")])
    fail_p[incident] = [0.25, 0.15]
    status = _pick(rng, np.column_stack([1.0 - fail_p.sum(axis=1), fail_p]))

    duration = rng.lognormal(np.log(_DURATION_MEDIAN[category]), _DURATION_SIGMA[category])
    duration[status == 1] *= 0.4  # errors usually fail fast
    timed_out = status == 2
    duration[timed_out] = _TIMEOUT_MS + rng.exponential(150.0, int(timed_out.sum()))
    size = rng.lognormal(np.log(_SIZE_MEDIAN[category]), _SIZE_SIGMA[category])
    size[status != 0] = rng.lognormal(np.log(400.0), 0.4, int((status != 0).sum()))  # error bodies

    # Users: a skewed population (a few very active users) that grows with the trend; batch
    # events belong to service accounts.
    population = max(rows // 6, 100)
    reach = 0.8 + 0.2 * day / max(n_days - 1, 1)
    user = _FIRST_HUMAN_ID + (population * reach * rng.random(rows) ** 2.5).astype(np.int64)
    user[is_batch] = rng.integers(1, _SERVICE_ACCOUNTS + 1, int(is_batch.sum()))

    # Sort by time so ids increase with ts, like an append-only log. Rows are already grouped by
    # day; a stable sort on the full timestamp keeps the order reproducible.
    seconds = day.astype(np.int64) * 86_400 + second_of_day
    order = np.argsort(seconds, kind="stable")
    stamps = np.datetime64(first_day, "s") + seconds[order]
    return {
        "ts": np.datetime_as_string(stamps, unit="s"),
        "source": np.asarray(SOURCES, dtype=object)[source[order]],
        "category": np.asarray(CATEGORIES, dtype=object)[category[order]],
        "status": np.asarray(STATUSES, dtype=object)[status[order]],
        "size_bytes": np.maximum(np.rint(size[order]), 1).astype(np.int64),
        "duration_ms": np.round(duration[order], 1),
        "user_id": user[order],
    }


_DDL = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    source TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    user_id INTEGER NOT NULL
)
"""


def generate(
    path: Path,
    *,
    seed: int = 7,
    end: dt.date | None = None,
    weeks: int = 16,
    rows: int = 120_000,
) -> DemoSummary:
    """Write ``rows`` demo events covering ``weeks`` whole ISO weeks ending at ``end`` to ``path``.

    ``end`` defaults to the Sunday before the current ISO week (the last complete week); an
    ``end`` that is not a Sunday is moved back to the Sunday on or before it. An existing file
    at ``path`` is replaced atomically: the database is built in a temporary file next to it
    and moved into place only when complete.
    """
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    if rows < 0:
        raise ValueError(f"rows must not be negative, got {rows}")
    if end is None:
        today = dt.date.today()
        end = today - dt.timedelta(days=today.weekday() + 1)
    mondays = week_starts(end, weeks)
    first_day, last_day = mondays[0], mondays[-1] + dt.timedelta(days=6)

    data = _events(np.random.default_rng(seed), first_day, 7 * weeks, rows)
    columns = list(data)
    records = zip(range(1, rows + 1), *(data[c].tolist() for c in columns))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: it creates the file 0600; SQLite creates it with the usual umask permissions.
    tmp_name = str(path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        con = sqlite3.connect(tmp_name)
        try:
            # No journal: the temporary file is discarded on any failure anyway.
            con.execute("PRAGMA journal_mode = OFF")
            con.execute(_DDL)
            placeholders = ", ".join("?" * (len(columns) + 1))
            con.executemany(f"INSERT INTO events (id, {', '.join(columns)}) VALUES ({placeholders})", records)
            con.execute("CREATE INDEX ix_events_ts ON events (ts)")
            con.commit()
        finally:
            con.close()
        with open(tmp_name, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return DemoSummary(path=path, rows=rows, first_day=first_day, last_day=last_day, weeks=mondays)
