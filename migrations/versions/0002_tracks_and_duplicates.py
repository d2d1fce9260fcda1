"""Person tracks, which detections were embedded, how many sampled frames were duplicates, which reader decoded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        # rows of revision 0001 were one track each and all embedded
        batch.add_column(sa.Column("track", sa.Integer, nullable=False, server_default="-1"))
        batch.add_column(sa.Column("embedded", sa.Boolean, nullable=False, server_default=sa.true()))
    op.execute("UPDATE persons SET track = id")
    op.create_index("ix_persons_embedded", "persons", ["embedded"])
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("frames_skipped", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("reader", sa.String))


def downgrade() -> None:
    op.drop_index("ix_persons_embedded", "persons")
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("embedded")
        batch.drop_column("track")
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("frames_skipped")
        batch.drop_column("reader")
