"""access indexes: grants by (report, subject) and (publication, subject); memberships by group

Revision ID: f2a6c8e0b4d1
Revises: e5b9c1d7a3f4
Create Date: 2026-12-02 04:30:00

Every list and download asks "does a grant on this report (or this publication) name this user or
one of their groups?" (publish_server.access._visible). uq_grants leads with (report_id, variant),
so a report with many readers was scanned grant by grant, and grants by publication not indexed at
all. memberships(user_id) is its primary key's leading column already; memberships(group_id) serves
the readers count and group deletions.
"""
from alembic import op


revision = 'f2a6c8e0b4d1'
down_revision = "e5b9c1d7a3f4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_grants_report_subject', 'grants', ['report_id', 'user_id', 'group_id', 'variant'])
    op.create_index('ix_grants_publication_subject', 'grants', ['publication_id', 'user_id', 'group_id'])
    op.create_index('ix_memberships_group_id', 'memberships', ['group_id'])


def downgrade():
    op.drop_index('ix_memberships_group_id', table_name='memberships')
    op.drop_index('ix_grants_publication_subject', table_name='grants')
    op.drop_index('ix_grants_report_subject', table_name='grants')
