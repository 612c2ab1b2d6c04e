"""publication variants: versions per (report, variant, period); variant grants; search text

Revision ID: d1a5b7c3e902
Revises: c4d2e8a9f613
Create Date: 2026-12-02 03:30:00

Existing publications have no variant (""): their versions are renumbered per (report, period)
by created_at, then id, so a report's weeks each start at v1 as new publications will. Their
search text is computed here with a frozen copy of the rule (a migration must not change when
the application's code does).
"""
import datetime as dt
import json
import re

from alembic import op
import sqlalchemy as sa


revision = 'd1a5b7c3e902'
down_revision = 'c4d2e8a9f613'
branch_labels = None
depends_on = None

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _week(text):
    found = _DATE.match(text.strip())
    if not found:
        return None
    try:
        year, week, _ = dt.date(*map(int, found.groups())).isocalendar()
    except ValueError:
        return None
    return f"{year}-W{week:02d}"


def _values(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _values(item)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        yield " ".join(_CONTROL.sub(" ", str(value)[:200]).split())


def _search_text(period_label, parameters):
    words = [period_label or ""]
    for value in (parameters or {}).values():
        for text in _values(value):
            words += [text, _week(text) or ""]
    return "\n".join(dict.fromkeys(w.lower() for w in words if w))


def _renumber_and_index(conn):
    rows = conn.execute(sa.text(
        "SELECT id, report_id, period_label, parameters FROM publications ORDER BY report_id, period_label, created_at, id"
    )).all()
    counters = {}  # the version constraint is dropped meanwhile: no step collides
    for row in rows:
        key = (row.report_id, row.period_label or "")
        counters[key] = counters.get(key, 0) + 1
        parameters = row.parameters if isinstance(row.parameters, dict) else json.loads(row.parameters or "{}")
        conn.execute(sa.text("UPDATE publications SET version = :v, search_text = :t WHERE id = :id"),
                     {"v": counters[key], "t": _search_text(row.period_label, parameters), "id": row.id})


def upgrade():
    with op.batch_alter_table('publications') as batch:
        batch.add_column(sa.Column('variant', sa.JSON(), nullable=False, server_default='{}'))
        batch.add_column(sa.Column('variant_label', sa.String(length=200), nullable=False, server_default=''))
        batch.add_column(sa.Column('search_text', sa.Text(), nullable=False, server_default=''))
        batch.drop_constraint('uq_publications_version', type_='unique')
    _renumber_and_index(op.get_bind())
    with op.batch_alter_table('publications') as batch:
        batch.create_unique_constraint('uq_publications_version', ['report_id', 'variant_label', 'period_label', 'version'])
    with op.batch_alter_table('grants') as batch:
        batch.add_column(sa.Column('variant', sa.String(length=200), nullable=True))
        batch.drop_constraint('uq_grants', type_='unique')
        batch.create_unique_constraint('uq_grants', ['report_id', 'variant', 'publication_id', 'user_id', 'group_id'])
        batch.create_check_constraint('ck_grants_variant', 'variant IS NULL OR report_id IS NOT NULL')


def downgrade():
    # Variant grants would widen to report grants if only the column went: they go with it.
    op.execute("DELETE FROM grants WHERE variant IS NOT NULL")
    with op.batch_alter_table('grants') as batch:
        batch.drop_constraint('ck_grants_variant', type_='check')
        batch.drop_constraint('uq_grants', type_='unique')
        batch.create_unique_constraint('uq_grants', ['report_id', 'publication_id', 'user_id', 'group_id'])
        batch.drop_column('variant')
    with op.batch_alter_table('publications') as batch:
        batch.drop_constraint('uq_publications_version', type_='unique')
    # One version sequence per report again, in the order they were published.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, report_id FROM publications ORDER BY report_id, created_at, id")).all()
    counters = {}
    for row in rows:
        counters[row.report_id] = counters.get(row.report_id, 0) + 1
        conn.execute(sa.text("UPDATE publications SET version = :v WHERE id = :id"), {"v": counters[row.report_id], "id": row.id})
    with op.batch_alter_table('publications') as batch:
        batch.create_unique_constraint('uq_publications_version', ['report_id', 'version'])
        batch.drop_column('search_text')
        batch.drop_column('variant_label')
        batch.drop_column('variant')
