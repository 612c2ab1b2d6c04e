"""publication withdrawal (withdrawn_at, withdrawn_by, withdrawn_reason)

Revision ID: c4a7e2d91f03
Revises: 3b8e5f0c1a27
Create Date: 2026-12-02 01:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4a7e2d91f03'
down_revision = '3b8e5f0c1a27'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('publications') as batch:
        batch.add_column(sa.Column('withdrawn_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('withdrawn_by', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('withdrawn_reason', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('publications') as batch:
        batch.drop_column('withdrawn_reason')
        batch.drop_column('withdrawn_by')
        batch.drop_column('withdrawn_at')
