"""password reset links; the code a resend replaced

Revision ID: c4d2e8a9f613
Revises: c4a7e2d91f03
Create Date: 2026-12-02 01:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4d2e8a9f613'
down_revision = 'c4a7e2d91f03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'password_resets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_password_resets_user_id', 'password_resets', ['user_id'])
    with op.batch_alter_table('login_challenges') as batch:
        batch.add_column(sa.Column('previous_code_hmac', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('login_challenges') as batch:
        batch.drop_column('previous_code_hmac')
    op.drop_index('ix_password_resets_user_id', table_name='password_resets')
    op.drop_table('password_resets')
