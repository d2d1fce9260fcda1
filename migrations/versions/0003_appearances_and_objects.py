"""Appearances (a person's track through a video: span, best crop, pooled embedding, attributes) and objects
(the detector's other classes per frame).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appearances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("track", sa.Integer, nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("detections", sa.Integer, nullable=False),
        sa.Column("best_person_id", sa.BigInteger),
        sa.Column("pooled", sa.LargeBinary),
        sa.Column("attributes", sa.String),
    )
    op.create_index("ix_appearances_video_track", "appearances", ["video_id", "track"], unique=True)
    # Spans and best crops follow from the persons already stored; the pooled embedding and the
    # attributes need the vectors and the models: videos indexed before this revision get them when re-indexed.
    op.execute(
        """
        INSERT INTO appearances (video_id, track, start, "end", detections, best_person_id)
        SELECT f.video_id, p.track, MIN(f.t), MAX(f.t), COUNT(*),
               (SELECT b.id FROM persons b JOIN frames bf ON bf.id = b.frame_id
                WHERE bf.video_id = f.video_id AND b.track = p.track AND b.embedded
                ORDER BY b.score * b.score * (b.x2 - b.x1) * (b.y2 - b.y1) DESC LIMIT 1)
        FROM persons p JOIN frames f ON f.id = p.frame_id
        GROUP BY f.video_id, p.track
        """
    )


    op.create_table(
        "objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("frame_id", sa.BigInteger, sa.ForeignKey("frames.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("x1", sa.Float, nullable=False),
        sa.Column("y1", sa.Float, nullable=False),
        sa.Column("x2", sa.Float, nullable=False),
        sa.Column("y2", sa.Float, nullable=False),
    )
    op.create_index("ix_objects_label_frame", "objects", ["label", "frame_id"])


def downgrade() -> None:
    op.drop_index("ix_objects_label_frame", "objects")
    op.drop_table("objects")
    op.drop_index("ix_appearances_video_track", "appearances")
    op.drop_table("appearances")
