"""notification mail queue and per-report preferences; publication summary, attach flag, link base

Revision ID: e5b9c1d7a3f4
Revises: d1a5b7c3e902
Create Date: 2026-12-02 03:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e5b9c1d7a3f4'
down_revision = "d1a5b7c3e902"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'mail_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('publication_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.Column('message_id', sa.String(length=200), nullable=True),
        sa.CheckConstraint("kind IN ('publication', 'digest')", name='ck_mail_jobs_kind'),
        sa.CheckConstraint("status IN ('queued', 'sending', 'sent', 'cancelled', 'failed')", name='ck_mail_jobs_status'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['publication_id'], ['publications.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'publication_id', name='uq_mail_jobs_recipient'),
    )
    op.create_index('ix_mail_jobs_due', 'mail_jobs', ['status', 'next_attempt_at'])
    op.create_table(
        'notification_preferences',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('report_id', sa.Integer(), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("mode IN ('each', 'digest', 'none')", name='ck_notification_preferences_mode'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'report_id'),
    )
    with op.batch_alter_table('publications') as batch:
        batch.add_column(sa.Column('summary', sa.String(length=300), nullable=False, server_default=''))
        batch.add_column(sa.Column('attach_pdf', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('link_base', sa.String(length=300), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('publications') as batch:
        batch.drop_column('link_base')
        batch.drop_column('attach_pdf')
        batch.drop_column('summary')
    op.drop_table('notification_preferences')
    op.drop_index('ix_mail_jobs_due', table_name='mail_jobs')
    op.drop_table('mail_jobs')
