"""devices and login challenges (two-step sign-in)

Revision ID: 7d2c9a41b5e0
Revises: 45ced00e34d4
Create Date: 2026-11-30 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7d2c9a41b5e0'
down_revision = '45ced00e34d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'devices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('user_agent', sa.String(length=300), nullable=False),
        sa.Column('client', sa.String(length=8), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('trusted_until', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('ips', sa.JSON(), nullable=False),
        sa.Column('macs', sa.JSON(), nullable=False),
        sa.Column('mac_status', sa.String(length=120), nullable=False),
        sa.Column('last_ip', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('public_id'),
        sa.UniqueConstraint('secret_hash'),
    )
    op.create_index('ix_devices_user_id', 'devices', ['user_id'])
    op.create_table(
        'login_challenges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=True),
        sa.Column('binding_hash', sa.String(length=64), nullable=False),
        sa.Column('code_hmac', sa.String(length=64), nullable=False),
        sa.Column('client', sa.String(length=8), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('mac', sa.String(length=17), nullable=True),
        sa.Column('mac_status', sa.String(length=120), nullable=False),
        sa.Column('user_agent', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('sends', sa.Integer(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('public_id'),
    )
    op.create_index('ix_login_challenges_user_id', 'login_challenges', ['user_id'])
    op.create_index('ix_login_challenges_created_at', 'login_challenges', ['created_at'])


def downgrade():
    op.drop_index('ix_login_challenges_created_at', table_name='login_challenges')
    op.drop_index('ix_login_challenges_user_id', table_name='login_challenges')
    op.drop_table('login_challenges')
    op.drop_index('ix_devices_user_id', table_name='devices')
    op.drop_table('devices')
