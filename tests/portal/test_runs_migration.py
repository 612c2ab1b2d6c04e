"""Migration a3c9e1f5b7d2 (runs from the portal) on a filled database: nothing is lost.

An empty database (SQLite, and the test PostgreSQL) is upgraded to f2a6c8e0b4d1 and filled with
a row of every table there (users of both roles, a group and its member, devices, login
challenges, report, variant and publication grants, publications, tokens, mail jobs, audit
rows ...), the required columns filled from the reflected schema. After the upgrade to head
every row reads back the same, the new columns are empty (tokens and reports without a
project, which act and are acted on as before), and the operator role is allowed; after the
downgrade the rows are still the same.
"""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from publish_server import create_app
from publish_server.extensions import db

from .conftest import base_config

BEFORE = "f2a6c8e0b4d1"
T0 = dt.datetime(2026, 11, 20, 9, 0)
# Parents first; each table gets rows 1 and 2 (grants more: one of each kind).
TABLES = ["users", "groups", "memberships", "reports", "publisher_tokens", "publications", "grants", "devices",
          "login_challenges", "guess_counters", "password_resets", "revoked_tokens", "audit_events", "mail_jobs",
          "notification_preferences"]
EXPLICIT = {
    "users": [{"id": 1, "email": "alice@example.com", "role": "recipient"}, {"id": 2, "email": "carol@example.com", "role": "admin"}],
    "groups": [{"id": 1, "name": "finance"}, {"id": 2, "name": "east"}],
    "memberships": [{"user_id": 1, "group_id": 1}, {"user_id": 2, "group_id": 2}],
    "reports": [{"id": 1, "slug": "weekly"}, {"id": 2, "slug": "monthly"}],
    "publications": [{"id": 1, "report_id": 1, "version": 1, "variant_label": "north", "variant": {"region": "north"}},
                     {"id": 2, "report_id": 2, "version": 1, "publisher_id": 1}],
    "grants": [{"id": 1, "report_id": 1, "group_id": 1}, {"id": 2, "report_id": 1, "variant": "north", "user_id": 2},
               {"id": 3, "publication_id": 2, "user_id": 1}],
    "devices": [{"id": 1, "user_id": 1, "ips": ["10.0.0.7"]}, {"id": 2, "user_id": 2}],
    "login_challenges": [{"id": 1, "user_id": 1, "device_id": 1}, {"id": 2, "user_id": 2}],
    "password_resets": [{"id": 1, "user_id": 1}, {"id": 2, "user_id": 2}],
    "mail_jobs": [{"id": 1, "user_id": 1, "publication_id": 1, "kind": "publication", "status": "sent"},
                  {"id": 2, "user_id": 2, "publication_id": 2, "kind": "digest", "status": "queued"}],
    "notification_preferences": [{"user_id": 1, "report_id": 1, "mode": "digest"}, {"user_id": 2, "report_id": 2, "mode": "none"}],
    "audit_events": [{"id": 1, "user_id": 1, "event": "download", "outcome": "ok"}, {"id": 2, "event": "publish", "outcome": "ok"}],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request):
    if request.param == "sqlite":
        return ""
    admin, postgres_url = request.getfixturevalue("pg_template")
    name = f"migration_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    return sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


def _filler(column: sa.Column, n: int):
    """A value of the column's type, distinct per row ``n`` (unique columns stay unique)."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, sa.Float):
        return float(n)
    if isinstance(kind, sa.DateTime):
        return T0 + dt.timedelta(minutes=n)
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.LargeBinary):
        return b"x"
    length = getattr(kind, "length", None) or 64
    return f"{column.name[:20]}-{n}-{secrets.token_hex(4)}"[:length]


def _fill(conn) -> None:
    meta = sa.MetaData()
    meta.reflect(conn, only=TABLES)
    for name in TABLES:
        table = meta.tables[name]
        rows = EXPLICIT.get(name) or [{}, {}]
        for n, given in enumerate(rows, start=1):
            row = dict(given)
            for column in table.columns:
                if column.name in row or column.nullable and not column.primary_key:
                    continue
                if column.primary_key and column.autoincrement is True and isinstance(column.type, sa.Integer):
                    row[column.name] = n
                    continue
                row[column.name] = _filler(column, n)
            conn.execute(table.insert().values(**row))


def _same_columns(conn, before_columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    found = {}
    for name, columns in before_columns.items():
        table = sa.table(name, *[sa.column(c) for c in columns])
        order = [sa.column(c) for c in columns[:1]]
        found[name] = sorted(tuple(row) for row in conn.execute(sa.select(table).order_by(*order)))
    return found


def test_upgrading_a_filled_database_loses_nothing(tmp_path, empty_database_url):
    app = create_app(base_config(DATABASE_URL=empty_database_url), instance_path=tmp_path / "instance")
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            _fill(conn)
        with db.engine.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn, only=TABLES)
            columns = {name: [c.name for c in meta.tables[name].columns] for name in TABLES}
            before = _same_columns(conn, columns)
        assert all(len(rows) >= 2 for rows in before.values())

        upgrade()
        with db.engine.begin() as conn:
            assert _same_columns(conn, columns) == before
            assert conn.execute(sa.text("SELECT count(*) FROM publisher_tokens WHERE project IS NOT NULL")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM reports WHERE project IS NOT NULL")).scalar() == 0
            for table in ("run_grants", "report_profiles", "run_logs", "run_requests"):
                assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
            conn.execute(sa.text("UPDATE users SET role = 'operator' WHERE id = 1"))  # the new role is allowed ...
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # ... and only the known ones
                conn.execute(sa.text("UPDATE users SET role = 'root' WHERE id = 2"))

        downgrade(revision=BEFORE)  # back: the operator is a recipient again, nothing else changes
        with db.engine.connect() as conn:
            assert _same_columns(conn, columns) == before  # alice was a recipient before: the same row again
            roles = dict(conn.execute(sa.text("SELECT email, role FROM users")).all())
            assert roles == {"alice@example.com": "recipient", "carol@example.com": "admin"}
        db.engine.dispose()
