"""Tracked things: an appearance is the track of any tracked class (a person, a car, a bus...), and says which.

Appearances already indexed are persons' (only persons were tracked before) and keep everything they had.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appearances") as batch:
        batch.add_column(sa.Column("label", sa.String, nullable=False, server_default="person"))


def downgrade() -> None:
    with op.batch_alter_table("appearances") as batch:
        batch.drop_column("label")
