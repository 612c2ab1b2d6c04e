"""Guess counters: a limit that holds however many requests arrive at once, in any process.

A counter is a row of ``guess_counters`` per key (a submitted email's failed passwords, an
account's emailed codes). :func:`take` claims one slot before the guarded work happens (the
password hash, the mail): it reads the row and moves it on with a conditional UPDATE that only
matches the state it read (compare-and-swap). Two requests that read the same state cannot both
win: on SQLite writers are serialised, on PostgreSQL the second UPDATE waits for the first to
commit and then matches no row, and the loser reads again. So 50 requests at once take exactly
``limit`` slots. A slot given up because nothing was guessed (right password, mail not sent) is
handed back with :func:`give_back`.

Each change is committed at once, with whatever the session holds: a slot must count for
every other process before the slow work starts, not at the end of the request. Callers take
slots before they change anything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db
from ..models import GuessCounter

__all__ = ["take", "give_back"]

# Losing the compare-and-swap this often means more contention than 50 requests at once make;
# refuse (fail closed) rather than spin.
_MAX_ROUNDS = 200
_KEEP_IDLE = dt.timedelta(days=2)  # rows untouched this long are deleted when a new key arrives


def _create_row(key: str, moment: dt.datetime) -> None:
    """Make the key's row (a no-op when a concurrent request made it first)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = GuessCounter.__table__
    created = db.session.execute(insert(table).values(key=key, window_start=moment, count=0, last_at=None)
                                 .on_conflict_do_nothing().returning(table.c.key)).first()
    if created is not None:  # a new key (attackers make many): forget the long-idle ones
        db.session.execute(table.delete().where(table.c.last_at < moment - _KEEP_IDLE))
    db.session.commit()


def take(key: str, *, limit: int, window: dt.timedelta, moment: dt.datetime,
         wait: Callable[[int], float] | None = None) -> int | None:
    """Claim a slot: its number (1 = the first in this window), or None when the key must wait.

    ``wait(count)`` is how many seconds must have passed since the latest slot when ``count``
    are taken (a growing delay); the window starts again ``window`` after its first slot.
    """
    table = GuessCounter.__table__
    for _ in range(_MAX_ROUNDS):
        seen = db.session.execute(select(table.c.count, table.c.window_start, table.c.last_at).where(table.c.key == key)).first()
        if seen is None:  # a key's first slot: its row is written once, not on every attempt
            _create_row(key, moment)
            continue
        count, start = (0, moment) if seen.window_start + window <= moment else (seen.count, seen.window_start)
        if count >= limit:
            db.session.commit()
            return None
        if wait is not None and count and seen.last_at is not None and moment < seen.last_at + dt.timedelta(seconds=wait(count)):
            db.session.commit()
            return None
        moved = db.session.execute(
            update(table).where(table.c.key == key, table.c.count == seen.count, table.c.window_start == seen.window_start)
            .values(count=count + 1, window_start=start, last_at=moment))
        db.session.commit()
        if moved.rowcount == 1:
            return count + 1
    return None


def give_back(key: str) -> None:
    """Return one slot (nothing was guessed with it after all)."""
    table = GuessCounter.__table__
    db.session.execute(update(table).where(table.c.key == key, table.c.count > 0).values(count=table.c.count - 1))
    db.session.commit()
