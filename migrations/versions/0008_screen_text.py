"""Text read on screen: one row per text and span of consecutive frames (its best reading's box, string, confidence
and, where it was read inside a vehicle's box, that detection), with a full-text index of its folded form.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# the external-content FTS5 table follows screen_texts through these triggers (deletes cascading from a replaced
# or pruned video fire them too); trigram: any three characters of a folded text find it, so a plate matches
# inside a longer line
FTS_STATEMENTS = (
    "CREATE VIRTUAL TABLE screen_texts_fts USING fts5(folded, content='screen_texts', content_rowid='id',"
    " tokenize='trigram')",
    "CREATE TRIGGER screen_texts_ai AFTER INSERT ON screen_texts BEGIN"
    " INSERT INTO screen_texts_fts(rowid, folded) VALUES (new.id, new.folded); END",
    "CREATE TRIGGER screen_texts_ad AFTER DELETE ON screen_texts BEGIN"
    " INSERT INTO screen_texts_fts(screen_texts_fts, rowid, folded) VALUES ('delete', old.id, old.folded); END",
)


def upgrade() -> None:
    op.create_table(
        "screen_texts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("frame_id", sa.BigInteger, sa.ForeignKey("frames.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("text", sa.String, nullable=False),
        sa.Column("folded", sa.String, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        *(sa.Column(name, sa.Float, nullable=False) for name in ("x1", "y1", "x2", "y2")),
        sa.Column("within_label", sa.String),
        sa.Column("within_score", sa.Float),
        *(sa.Column(f"within_{name}", sa.Float) for name in ("x1", "y1", "x2", "y2")),
    )
    op.create_index("ix_screen_texts_video_start", "screen_texts", ["video_id", "start"])
    op.create_index("ix_screen_texts_frame", "screen_texts", ["frame_id"])
    for statement in FTS_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for name in ("screen_texts_ad", "screen_texts_ai"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE screen_texts_fts")
    op.drop_index("ix_screen_texts_frame", "screen_texts")
    op.drop_index("ix_screen_texts_video_start", "screen_texts")
    op.drop_table("screen_texts")
