"""Migration d1a5b7c3e902 (publication variants) on rows made at the revision before it.

Runs on SQLite and on a real PostgreSQL: an empty database is upgraded to c4d2e8a9f613, filled
with publications numbered the old way (one sequence per report), then upgraded to head. Each
(report, period) must then count its own versions from 1, by publication time, and the search
text must be there for the old rows.

And on SQLite, every row made at c4d2e8a9f613 (and at the notification queue's revision) survives
the batch re-creates of the later migrations, a publication's own grant first of all.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from publish_server import create_app
from publish_server.extensions import db

from .conftest import base_config

BEFORE = "c4d2e8a9f613"
T0 = dt.datetime(2026, 11, 20, 9, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request):
    if request.param == "sqlite":
        return ""
    admin, postgres_url = request.getfixturevalue("pg_template")
    name = f"migration_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    return sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


def _old_rows(conn) -> None:
    conn.execute(sa.text("INSERT INTO reports (id, slug, title, description, created_at) VALUES (1, 'weekly', 'Weekly', '', :t)"), {"t": T0})
    conn.execute(sa.text("INSERT INTO groups (id, name) VALUES (1, 'north')"))
    conn.execute(sa.text("INSERT INTO grants (report_id, group_id, created_at) VALUES (1, 1, :t)"), {"t": T0})
    # Old numbering: v1..v4 across two weeks; row 4 was published before row 2 (created_at decides, then id).
    rows = [(1, 1, "2026-W47", 0, {"week": "2026-11-16"}), (2, 2, "2026-W47", 3, {"week": "2026-11-16"}),
            (3, 3, "2026-W46", 1, {"week": "2026-11-09"}), (4, 4, "2026-W47", 2, {"week": "2026-11-16", "region": "North"})]
    for pid, version, period, hours, parameters in rows:
        conn.execute(sa.text(
            "INSERT INTO publications (id, public_id, report_id, version, parameters, period_label, run_id, sha256, size, created_at)"
            " VALUES (:id, :pub, 1, :v, :params, :period, :run, :sha, 10, :t)"),
            {"id": pid, "pub": f"pub{pid}", "v": version, "params": json.dumps(parameters), "period": period,
             "run": f"run{pid}", "sha": "a" * 64, "t": T0 + dt.timedelta(hours=hours)})


def test_versions_are_renumbered_per_period_and_old_rows_are_searchable(tmp_path, empty_database_url):
    app = create_app(base_config(DATABASE_URL=empty_database_url), instance_path=tmp_path / "instance")
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            _old_rows(conn)
        upgrade()
        with db.engine.connect() as conn:
            found = {r.public_id: r for r in conn.execute(sa.text(
                "SELECT public_id, version, variant_label, search_text FROM publications"))}
            assert {k: r.version for k, r in found.items()} == {"pub1": 1, "pub4": 2, "pub2": 3, "pub3": 1}
            assert all(r.variant_label == "" for r in found.values())
            assert "2026-w47" in found["pub4"].search_text.split("\n") and "north" in found["pub4"].search_text
            assert "2026-w46" in found["pub3"].search_text  # from its date parameter, not only the label
            assert conn.execute(sa.text("SELECT variant FROM grants")).scalar() is None  # the report grant stays whole
            with pytest.raises(sa.exc.IntegrityError):  # the new constraint holds
                conn.execute(sa.text(
                    "INSERT INTO publications (public_id, report_id, version, parameters, period_label, run_id, sha256, size,"
                    " created_at, variant, variant_label, search_text) VALUES ('dup', 1, 1, '{}', '2026-W46', 'run9', :sha,"
                    " 1, :t, '{}', '', '')"), {"sha": "b" * 64, "t": T0})
        downgrade(revision=BEFORE)  # and back: one sequence per report again
        with db.engine.connect() as conn:
            versions = dict(conn.execute(sa.text("SELECT public_id, version FROM publications")).all())
            assert versions == {"pub1": 1, "pub3": 2, "pub4": 3, "pub2": 4}
        db.engine.dispose()


QUEUE = "e5b9c1d7a3f4"  # the revision that creates notification_preferences and mail_jobs


def _rows_at_before(conn) -> None:
    """A user with a device and a login challenge, a group, a report grant and a publication grant."""
    conn.execute(sa.text(
        "INSERT INTO users (id, public_id, email, display_name, password_hash, active, role, created_at,"
        " tokens_valid_after, must_change_password) VALUES (1, 'u1', 'ann@example.org', 'Ann', 'x', 1 = 1,"
        " 'recipient', :t, :t, 1 = 0)"), {"t": T0})
    conn.execute(sa.text("INSERT INTO memberships (user_id, group_id) VALUES (1, 1)"))
    conn.execute(sa.text("INSERT INTO grants (publication_id, user_id, created_at) VALUES (2, 1, :t)"), {"t": T0})
    conn.execute(sa.text(
        "INSERT INTO devices (id, public_id, user_id, secret_hash, name, user_agent, client, first_seen_at, last_seen_at,"
        " trusted_until, ips, macs, mac_status, last_ip) VALUES (1, 'd1', 1, :h, 'laptop', 'ua', 'web', :t, :t, :t,"
        " '[]', '[]', '', '127.0.0.1')"), {"h": "c" * 64, "t": T0})
    conn.execute(sa.text(
        "INSERT INTO login_challenges (public_id, user_id, device_id, binding_hash, code_hmac, client, reason, ip,"
        " mac_status, user_agent, created_at, expires_at, attempts, sends) VALUES ('c1', 1, 1, :h, :h, 'web',"
        " 'new device', '127.0.0.1', '', 'ua', :t, :t, 0, 1)"), {"h": "d" * 64, "t": T0})


def _row_counts(conn) -> dict[str, int]:
    tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
    return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}


def test_batch_migrations_on_sqlite_keep_every_row_that_points_at_a_re_created_table(tmp_path):
    # SQLite re-creates a table to alter it (copy, DROP TABLE, rename). With foreign keys on, the
    # DROP ran ON DELETE CASCADE on every row pointing at it: grants of a publication, devices,
    # preferences and queued mails went with it. migrations/env.py turns foreign keys off for this.
    app = create_app(base_config(), instance_path=tmp_path / "instance")
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            _old_rows(conn)
            _rows_at_before(conn)
        upgrade(revision=QUEUE)
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO notification_preferences (user_id, report_id, mode, updated_at)"
                                 " VALUES (1, 1, 'digest', :t)"), {"t": T0})
            conn.execute(sa.text("INSERT INTO mail_jobs (kind, user_id, publication_id, status, attempts, next_attempt_at,"
                                 " created_at) VALUES ('publication', 1, 2, 'queued', 0, :t, :t)"), {"t": T0})
            before = _row_counts(conn)
        upgrade()
        with db.engine.connect() as conn:
            after = _row_counts(conn)
            assert {t: after[t] for t in before} == before
            assert before["grants"] == 2 and before["devices"] == 1 and before["mail_jobs"] == 1
            grant = conn.execute(sa.text("SELECT p.public_id, g.user_id FROM grants g JOIN publications p"
                                         " ON p.id = g.publication_id")).one()
            assert tuple(grant) == ("pub2", 1)
            assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        db.engine.dispose()
