"""Catalog of videos, sampled frames and detected persons.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("path", sa.String, nullable=False, unique=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.String),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("error", sa.String),
        sa.Column("duration", sa.Float),
        sa.Column("fps", sa.Float),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("frame_count", sa.Integer),
        sa.Column("timeline", sa.String),
        sa.Column("sample_fps", sa.Float),
        sa.Column("indexed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "frames",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("frame_index", sa.Integer, nullable=False),
        sa.Column("t", sa.Float, nullable=False),
    )
    op.create_index("ix_frames_video_t", "frames", ["video_id", "t"])
    op.create_table(
        "persons",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("frame_id", sa.BigInteger, sa.ForeignKey("frames.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("x1", sa.Float, nullable=False),
        sa.Column("y1", sa.Float, nullable=False),
        sa.Column("x2", sa.Float, nullable=False),
        sa.Column("y2", sa.Float, nullable=False),
    )
    op.create_index("ix_persons_frame", "persons", ["frame_id"])


def downgrade() -> None:
    op.drop_table("persons")
    op.drop_table("frames")
    op.drop_table("videos")
    op.drop_table("meta")
