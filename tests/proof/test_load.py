"""The bounded load test (see :mod:`tests.proof.load`) on SQLite and on PostgreSQL.

Quick profile: 8 recipients for 10 s; full (``make proof``): 24 for 45 s. Errors must be 0 and
every downloaded file's SHA-256 must be its publication's; the figures go to docs/reliability.md.
"""

from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa

from tests.proof.load import portal, run_load, seed_instance
from tests.proof.profile import PROFILE


def database_for(request, kind: str) -> str:
    """"" for SQLite (the instance default); a fresh database on the session's PostgreSQL server."""
    if kind == "sqlite":
        return ""
    server = request.getfixturevalue("postgres_url")
    name = f"load_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_recipients_sign_in_list_and_download_while_publications_arrive(request, tmp_path, kind, proof):
    users, seconds = PROFILE.load_users, PROFILE.load_seconds
    proof.case("load", f"{kind}: {users} recipients, {seconds:g} s, gunicorn 2 workers",
               "0 errors under concurrent sign-in (password + emailed code, then trusted-device sign-ins), list, download and publish; every download's SHA-256 is its publication's")
    instance = tmp_path / "instance"
    token, known = seed_instance(instance, users, database_url=database_for(request, kind))
    with portal(instance, workers=2) as served:
        result = run_load(served.base, instance, token, known, database=kind, users=users, seconds=seconds,
                          publications=PROFILE.load_publications)
    proof.figures(f"load: {kind}", result.figures(
        note="loopback; threads + requests keep-alive clients; gunicorn gthread 2 workers x 4 threads; 2 CPUs shared "
             "with the clients and other tests; argon2 at production cost; latencies from the timed window (after "
             "every first sign-in); no limits changed (the limiter counts failed steps only)"))
    assert result.errors == [], result.errors[:10]
    assert result.download_count >= users  # every recipient got through at least one round
    assert len(result.published) == PROFILE.load_publications
    assert set(result.published) & set(result.downloads), "no publication posted during the load was downloaded"
