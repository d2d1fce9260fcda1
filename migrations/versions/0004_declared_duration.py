"""How long each video's file header says it lasts, so that videos indexed only up to where their file is cut short
are known (`stats` lists them as partial).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # videos indexed before this revision get it when re-indexed; until then they count as whole
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("declared_duration", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("declared_duration")
