"""Faces: each face found in a sampled frame (box, detector score, descriptor), the identities that pool the faces
of one person appearance, and the groups (people) that clustering makes of identities, with the names users give.

Archives before this revision hold no faces: the tables start empty, and `ingest --faces` fills them.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_face_groups_name", "face_groups", ["name"])
    op.create_table(
        "face_identities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("appearance_id", sa.Integer, sa.ForeignKey("appearances.id", ondelete="SET NULL")),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("face_groups.id", ondelete="SET NULL")),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("best_face_id", sa.Integer),
        sa.Column("pooled", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_face_identities_video_id", "face_identities", ["video_id"])
    op.create_index("ix_face_identities_group_id", "face_identities", ["group_id"])
    op.create_table(
        "faces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "identity_id", sa.Integer, sa.ForeignKey("face_identities.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("frame_id", sa.BigInteger, sa.ForeignKey("frames.id", ondelete="CASCADE"), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("x1", sa.Float, nullable=False),
        sa.Column("y1", sa.Float, nullable=False),
        sa.Column("x2", sa.Float, nullable=False),
        sa.Column("y2", sa.Float, nullable=False),
        sa.Column("descriptor", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_faces_identity_id", "faces", ["identity_id"])
    op.create_index("ix_faces_frame_id", "faces", ["frame_id"])


def downgrade() -> None:
    for table, column in (("faces", "frame_id"), ("faces", "identity_id"), ("face_identities", "group_id"),
                          ("face_identities", "video_id"), ("face_groups", "name")):
        op.drop_index(f"ix_{table}_{column}", table)
    for table in ("faces", "face_identities", "face_groups"):
        op.drop_table(table)
