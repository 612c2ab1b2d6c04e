"""runs from the portal: run grants, report profiles, run logs, run requests; project tokens; operators

Revision ID: a3c9e1f5b7d2
Revises: f2a6c8e0b4d1
Create Date: 2026-12-02 06:30:00

The toolkit tells the portal each report's parameter schema, schedule and runs (report_profiles,
run_logs); recipients with a run grant ask for runs (run_requests) that a worker holding the
report's project token takes. Tokens and reports gain a project (NULL: a token from before, which
acts for every report as it did). Users gain the operator role.
"""
import sqlalchemy as sa
from alembic import op


revision = 'a3c9e1f5b7d2'
down_revision = 'f2a6c8e0b4d1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint('ck_users_role', type_='check')
        batch.create_check_constraint('ck_users_role', "role IN ('recipient', 'operator', 'admin')")
    with op.batch_alter_table('publisher_tokens') as batch:
        batch.add_column(sa.Column('project', sa.String(length=80), nullable=True))
    with op.batch_alter_table('reports') as batch:
        batch.add_column(sa.Column('project', sa.String(length=80), nullable=True))

    op.create_table(
        'run_grants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('report_id', sa.Integer(), sa.ForeignKey('reports.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=True),
        sa.Column('group_id', sa.Integer(), sa.ForeignKey('groups.id', ondelete='CASCADE'), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('(user_id IS NULL) <> (group_id IS NULL)', name='ck_run_grants_subject'),
        sa.UniqueConstraint('report_id', 'user_id', 'group_id', name='uq_run_grants'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'report_profiles',
        sa.Column('report_id', sa.Integer(), sa.ForeignKey('reports.id', ondelete='CASCADE'), nullable=False),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('schedule', sa.JSON(), nullable=False),
        sa.Column('next_runs', sa.JSON(), nullable=False),
        sa.Column('owners', sa.JSON(), nullable=False),
        sa.Column('runnable', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('publisher_id', sa.Integer(), sa.ForeignKey('publisher_tokens.id', ondelete='SET NULL'), nullable=True),
        sa.PrimaryKeyConstraint('report_id'),
    )
    op.create_table(
        'run_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('report_id', sa.Integer(), sa.ForeignKey('reports.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('publisher_id', sa.Integer(), sa.ForeignKey('publisher_tokens.id', ondelete='SET NULL'), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=True),
        sa.Column('publication_id', sa.Integer(), sa.ForeignKey('publications.id', ondelete='SET NULL'), nullable=True),
        sa.Column('error_line', sa.String(length=500), nullable=False),
        sa.Column('notified_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired')",
                           name='ck_run_requests_status'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('public_id'),
    )
    op.create_index('ix_run_requests_report_status', 'run_requests', ['report_id', 'status'])
    op.create_index('ix_run_requests_user_status', 'run_requests', ['user_id', 'status'])
    op.create_table(
        'run_logs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('report_id', sa.Integer(), sa.ForeignKey('reports.id', ondelete='CASCADE'), nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('duration_seconds', sa.Float(), nullable=True),
        sa.Column('error_line', sa.String(length=500), nullable=False),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('request_id', sa.Integer(), sa.ForeignKey('run_requests.id', ondelete='SET NULL'), nullable=True),
        sa.Column('publication_id', sa.Integer(), sa.ForeignKey('publications.id', ondelete='SET NULL'), nullable=True),
        sa.Column('notebook_html', sa.LargeBinary(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'blocked', 'cancelled')", name='ck_run_logs_status'),
        sa.CheckConstraint("trigger IN ('schedule', 'request', 'manual', 'batch')", name='ck_run_logs_trigger'),
        sa.UniqueConstraint('report_id', 'run_id', name='uq_run_logs_run'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_run_logs_report_started', 'run_logs', ['report_id', 'started_at'])


def downgrade():
    op.drop_index('ix_run_logs_report_started', table_name='run_logs')
    op.drop_table('run_logs')
    op.drop_index('ix_run_requests_user_status', table_name='run_requests')
    op.drop_index('ix_run_requests_report_status', table_name='run_requests')
    op.drop_table('run_requests')
    op.drop_table('report_profiles')
    op.drop_table('run_grants')
    with op.batch_alter_table('reports') as batch:
        batch.drop_column('project')
    with op.batch_alter_table('publisher_tokens') as batch:
        batch.drop_column('project')
    op.execute("UPDATE users SET role = 'recipient' WHERE role = 'operator'")
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint('ck_users_role', type_='check')
        batch.create_check_constraint('ck_users_role', "role IN ('recipient', 'admin')")
