"""Migration d1a5b7c3e902 (publication variants) on rows made at the revision before it.

Runs on SQLite and on a real PostgreSQL: an empty database is upgraded to c4d2e8a9f613, filled
with publications numbered the old way (one sequence per report), then upgraded to head. Each
(report, period) must then count its own versions from 1, by publication time, and the search
text must be there for the old rows.
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
