"""The schedule's leader lease: one row in the job store's database says which daemon fires jobs.

Two ``nbpress schedule`` daemons may share one job store (a second host for when the first dies);
APScheduler 3 alone would let both fire the same tick. The row holds the leader (``HOST:PID``),
a random token that identifies its process, a renewal counter and, for people reading it, the
wall-clock time the lease runs until. Every change is a compare-and-swap on (token, counter), so
of two daemons that race for the lease exactly one wins, on SQLite and PostgreSQL alike.

A lease ends by *not being renewed*: a follower takes over once the counter has not moved for a
whole lease, measured on the follower's own monotonic clock (no clock on another host is
trusted). See :mod:`.leadership` for the timing that keeps a leader from firing once it could
have been replaced.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

__all__ = ["LEASE_TABLE", "Lease", "LeaseRow", "this_process", "leader_status"]

LEASE_TABLE = "nbpress_schedule_lease"
_NAME = "schedule"  # one lease per job store
_metadata = sa.MetaData()
_table = sa.Table(
    LEASE_TABLE, _metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(300), nullable=False),  # HOST:PID of the leader; "" when released
    sa.Column("token", sa.String(32), nullable=False),  # that process's random id (PIDs repeat)
    sa.Column("renewals", sa.Integer, nullable=False),  # moves on every change: followers watch it
    sa.Column("expires", sa.Float, nullable=False),  # leader's wall clock, for people (--status, logs)
)


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseRow:
    owner: str
    token: str
    renewals: int
    expires: float

    @property
    def free(self) -> bool:
        return not self.owner

    @property
    def key(self) -> tuple[str, int]:
        return self.token, self.renewals

    def until(self) -> str:
        return dt.datetime.fromtimestamp(self.expires, dt.timezone.utc).isoformat(timespec="seconds")


class Lease:
    """The lease row in ``url``'s database, as seen by one process (``owner`` names it)."""

    def __init__(self, url: str, seconds: float, *, owner: str | None = None):
        self.seconds = seconds
        self.owner = owner or this_process()
        self.token = uuid.uuid4().hex
        self.renewals = -1  # ours as last written; -1: we do not hold the lease
        timeout = max(1, int(seconds / 3))  # a database that does not answer must not stall the lease
        connect_args = {"timeout": timeout} if url.startswith("sqlite") else {"connect_timeout": timeout}
        self.engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)

    def create(self) -> None:
        """Make the table if it is missing (two daemons may start at once: the loser of that race sees it made)."""
        try:
            _metadata.create_all(self.engine, checkfirst=True)
        except SQLAlchemyError:
            if not sa.inspect(self.engine).has_table(LEASE_TABLE):
                raise

    def read(self) -> LeaseRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_table).where(_table.c.name == _NAME)).first()
        return None if row is None else LeaseRow(row.owner, row.token, row.renewals, row.expires)

    def acquire(self, seen: LeaseRow | None) -> bool:
        """Take the lease if it is still exactly as ``seen`` (None: no row yet)."""
        values = {"owner": self.owner, "token": self.token, "expires": time.time() + self.seconds}
        with self.engine.begin() as conn:
            if seen is None:
                try:
                    conn.execute(sa.insert(_table).values(name=_NAME, renewals=0, **values))
                except IntegrityError:  # another daemon made the row first
                    return False
                self.renewals = 0
                return True
            done = conn.execute(sa.update(_table).where(_table.c.name == _NAME, _table.c.token == seen.token,
                                                        _table.c.renewals == seen.renewals)
                                .values(renewals=seen.renewals + 1, **values)).rowcount
        if done == 1:
            self.renewals = seen.renewals + 1
        return done == 1

    def renew(self) -> bool:
        """Extend our lease; False when it is no longer ours. Raises SQLAlchemyError when the database fails."""
        if self.renewals < 0:
            return False
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(_table).where(_table.c.name == _NAME, _table.c.token == self.token,
                                                        _table.c.renewals == self.renewals)
                                .values(renewals=self.renewals + 1, expires=time.time() + self.seconds)).rowcount
        if done == 1:
            self.renewals += 1
            return True
        self.renewals = -1
        return False

    def release(self) -> None:
        """Give the lease up (an orderly stop): a follower takes over at its next look, not a lease later."""
        if self.renewals < 0:
            return
        with self.engine.begin() as conn:
            conn.execute(sa.update(_table).where(_table.c.name == _NAME, _table.c.token == self.token,
                                                 _table.c.renewals == self.renewals)
                         .values(owner="", renewals=self.renewals + 1, expires=time.time()))
        self.renewals = -1

    def close(self) -> None:
        self.engine.dispose()


def leader_status(url: str) -> str:
    """One line for ``nbpress schedule --status``: who leads the daemons on this job store."""
    database = sa.engine.make_url(url).database
    if url.startswith("sqlite") and database and not Path(database).is_file():  # asking must not create it
        return "no daemon has run on this job store yet"
    lease = Lease(url, 15)
    try:
        if not sa.inspect(lease.engine).has_table(LEASE_TABLE):
            return "no daemon has run on this job store yet"
        row = lease.read()
    finally:
        lease.close()
    if row is None or row.free:
        return "no daemon leads the schedule (the last one stopped and released the lease)"
    late = time.time() - row.expires
    gone = f"; not renewed for {late:.0f} s: that daemon is gone or cut off, a follower takes over" if late > 0 else ""
    return f"schedule led by {row.owner}, lease until {row.until()}{gone}"
