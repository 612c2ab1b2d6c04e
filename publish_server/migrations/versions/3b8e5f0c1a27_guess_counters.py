"""guess counters (atomic sign-in limits)

Revision ID: 3b8e5f0c1a27
Revises: 7d2c9a41b5e0
Create Date: 2026-12-01 21:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '3b8e5f0c1a27'
down_revision = '7d2c9a41b5e0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'guess_counters',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('last_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_guess_counters_last_at', 'guess_counters', ['last_at'])


def downgrade():
    op.drop_index('ix_guess_counters_last_at', table_name='guess_counters')
    op.drop_table('guess_counters')
