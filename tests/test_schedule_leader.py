"""Two `nbpress schedule` daemons on one job store: one leads (fires), the other waits and takes
over when the leader is SIGKILLed; a leader that cannot renew its lease stops firing in time.

As in tests/test_schedule_daemon.py no test waits for a cron minute: the job's next run time is
moved in the job store, a little into the future (both daemons, already running, wake for it at
the same moment, as they would for a real cron tick) or into the past (a tick missed while no
daemon led). A short lease (3 s) keeps it quick. The daemons' test runs on SQLite in `make test`
and also on PostgreSQL in `make proof` (NBPRESS_PROOF=full); the lease's own test runs on both.
"""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from tests.conftest import cli
from tests.helpers import wait_for
from tests.helpers import open_job_store
from tests.proof.profile import PROFILE
from tests.test_schedule_daemon import Daemon, no_daemon_left_behind, report, store_url  # noqa: F401
from toolkit.scheduler.jobs import TABLE, scheduled_specs, sync_jobs
from toolkit.scheduler.leadership import FOLLOWER_LOOK, Leadership
from toolkit.scheduler.lease import Lease

LEASE = 3
TICK_IN = 40  # seconds from now to the tick both daemons wake for (their start fits in it, even on a busy machine)


def _fresh_postgres(url: str) -> str:
    """The session's PostgreSQL server is shared: start from no job table and no lease."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in (TABLE, "nbpress_schedule_lease"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def jobs_url(request, project):
    if request.param == "sqlite":
        return store_url(project)
    if PROFILE.name != "full":
        pytest.skip("the daemons on PostgreSQL run in `make proof` (NBPRESS_PROOF=full); the lease test covers it here")
    return _fresh_postgres(request.getfixturevalue("postgres_url"))


def _next_run(url: str, report: str, move_to: dt.datetime) -> None:
    """Move the job's next run time in the store (the daemons read it from there)."""
    scheduler = open_job_store(url)
    try:
        scheduler.modify_job(report, next_run_time=move_to)
    finally:
        scheduler.shutdown()


def _seed(project, url: str) -> None:
    """The store as a daemon leaves it after its first start."""
    scheduler = open_job_store(url)
    try:
        sync_jobs(scheduler, project, scheduled_specs(project))
    finally:
        scheduler.shutdown()


def _runs(project) -> list:
    folder = project.runs_dir / "tick"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_one_of_two_daemons_fires_each_tick_and_a_killed_leader_is_replaced_in_time(project, jobs_url, monkeypatch, proof):
    database = jobs_url.split(":", 1)[0].split("+", 1)[0]
    proof.case("concurrency", f"two scheduler daemons on one job store ({database}), the leader SIGKILLed",
               "exactly one daemon runs each tick; the other takes over within the lease and runs the missed tick once")
    monkeypatch.setenv("NBPRESS_SCHEDULE_LEASE_SECONDS", str(LEASE))
    report(project, "tick", 'tk.metric("n", n, label="N")')
    url = jobs_url
    _seed(project, url)
    due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=TICK_IN)
    _next_run(url, "tick", move_to=due)
    daemons = [Daemon(project, url), Daemon(project, url)]  # racing for the lease, both then wake for the tick
    for daemon in daemons:
        daemon.wait_for("waiting for ticks")
    if dt.datetime.now(dt.timezone.utc) > due - dt.timedelta(seconds=1):
        pytest.skip(f"the daemons took over {TICK_IN} s to start (a loaded machine): they did not race for the tick")
    [leader] = [d for d in daemons if any("leading the schedule" in line for line in d.lines)]
    [follower] = [d for d in daemons if d is not leader]
    leader_name = f"{socket.gethostname()}:{leader.process.pid}"
    assert any(f"waiting: schedule led by {leader_name} until " in line for line in follower.lines)
    leader.wait_for("tick: succeeded", timeout=120)  # a second run would have made its folder by now
    assert len(_runs(project)) == 1
    result = cli("schedule", "--status", "--jobs-db", url, cwd=project.root)
    assert result.stdout.startswith(f"schedule led by {leader_name}, lease until "), result.stderr

    leader.process.kill()  # SIGKILL: no release, the lease has to run out
    killed = time.monotonic()
    leader.process.wait(10)
    _next_run(url, "tick", move_to=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30))  # missed in the gap
    follower.wait_for("leading the schedule", timeout=LEASE + 15)
    takeover = time.monotonic() - killed
    proof.figures(f"schedule leader takeover ({database})", {"lease_s": LEASE, "takeover_s": round(takeover, 2)})
    assert 2 * LEASE / 3 - 0.2 <= takeover <= LEASE + 2 * FOLLOWER_LOOK + 2  # not before the lease ran out, soon after
    follower.wait_for("tick: succeeded", timeout=120)
    time.sleep(1)
    runs = _runs(project)
    assert len(runs) == 2 and sum("tick: succeeded" in line for line in follower.lines) == 1
    follower_name = f"{socket.gethostname()}:{follower.process.pid}"
    assert cli("schedule", "--status", "--jobs-db", url, cwd=project.root).stdout.startswith(f"schedule led by {follower_name}")
    assert follower.stop() == 0
    assert cli("schedule", "--status", "--jobs-db", url, cwd=project.root).stdout.strip() == (
        "no daemon leads the schedule (the last one stopped and released the lease)")


def test_a_leader_that_cannot_renew_stops_firing_before_its_lease_could_be_taken(tmp_path):
    path = tmp_path / "jobs.sqlite"
    events: list[tuple[float, str, bool]] = []  # (when, who, leading) as the daemons' schedulers are told

    def daemon(who: str) -> Leadership:
        lease = Lease(f"sqlite:///{path}", LEASE, owner=who)
        lease.create()
        return Leadership(lease, on_lead=lambda: events.append((time.monotonic(), who, True)),
                          on_follow=lambda reason: events.append((time.monotonic(), who, False)))

    a, b = daemon("a"), daemon("b")
    a.step()
    assert a.leading
    halt = threading.Event()

    def main_threads() -> None:  # what each daemon's main thread does every half second
        while not halt.wait(0.1):
            a.check()
            b.check()

    threading.Thread(target=main_threads, daemon=True).start()
    a.start()
    b.start()
    try:
        wait_for(lambda: b._shown == "a", timeout=10, what="the follower saw the leader")
        time.sleep(LEASE / 3)  # a renewal or two went through
        lock = sqlite3.connect(path, timeout=10)  # waits for a renewal being written, if any
        lock.execute("BEGIN EXCLUSIVE")  # the database stops answering the daemons
        locked = time.monotonic()
        wait_for(lambda: not a.leading, timeout=2 * LEASE, what="the leader stopped firing")
        # Due 2/3 of the lease after its last renewal; a follower could take over a whole lease after it.
        assert time.monotonic() - locked < LEASE
        time.sleep(LEASE)  # unavailable for longer than a whole lease
        assert not a.leading and not b.leading
        lock.rollback()
        lock.close()
        wait_for(lambda: a.leading or b.leading, timeout=3 * LEASE, what="a daemon leads again")
    finally:
        halt.set()
        a.stop()
        b.stop()
    leading = {"a": False, "b": False}
    for _, who, state in sorted(events):
        leading[who] = state
        assert not all(leading.values()), events  # never two daemons firing at once


def test_status_before_any_daemon_creates_nothing(project):
    result = cli("schedule", "--status", cwd=project.root)
    assert (result.returncode, result.stdout.strip()) == (0, "no daemon has run on this job store yet")
    assert not project.runs_dir.exists()


def test_a_bad_lease_setting_is_one_line(project, monkeypatch):
    report(project, "tick", "x = 1")
    monkeypatch.setenv("NBPRESS_SCHEDULE_LEASE_SECONDS", "2")
    result = cli("schedule", "--jobs-db", store_url(project), cwd=project.root)
    assert result.returncode == 2
    assert result.stderr.strip() == "nbpress: error: NBPRESS_SCHEDULE_LEASE_SECONDS: must be at least 3"
    assert not project.runs_dir.exists()  # refused before the job store was made


@pytest.fixture(params=["sqlite", "postgres"])
def lease_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the session's server is shared: start from no lease
        conn.execute(sa.text("DROP TABLE IF EXISTS nbpress_schedule_lease"))
    engine.dispose()
    return url


def test_of_daemons_racing_for_the_lease_exactly_one_wins_and_a_silent_one_is_replaced(lease_url):
    leases = [Lease(lease_url, LEASE, owner=f"host-{i}:1") for i in range(6)]
    leases[0].create()
    start = threading.Barrier(len(leases))
    won: list[str] = []

    def race(lease: Lease) -> None:
        start.wait()
        if lease.acquire(None):  # everyone saw no row: each tries to make it
            won.append(lease.owner)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1
    winner = next(lease for lease in leases if lease.owner == won[0])
    seen = winner.read()
    assert winner.renew() and winner.read().renewals == seen.renewals + 1
    assert [lease.acquire(seen) for lease in leases if lease is not winner] == [False] * 5  # stale view: refused
    assert winner.renew()  # still its own

    # The winner falls silent (a SIGKILL renews nothing, releases nothing): a follower takes over
    # only once the lease has not moved for a whole lease.
    other = next(lease for lease in leases if lease is not winner)  # any of the five: the winner is random
    follower = Leadership(other, on_lead=lambda: None, on_follow=lambda reason: None)
    silent = time.monotonic()
    follower.start()
    try:
        wait_for(lambda: follower.leading, timeout=LEASE + 3 * FOLLOWER_LOOK, what="the follower took over")
        assert time.monotonic() - silent >= LEASE
        assert other.read().owner == other.owner and not winner.renew()  # the old leader learns it lost
    finally:
        follower.stop()
        for lease in leases:
            lease.close()
