"""Speech: transcribed segments and their timed words, with SQLite FTS5 indexes over both (porter stemming, BM25
ranking) that triggers keep in step. Archives made before have no transcripts: ingesting a video again adds them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TOKENIZER = "porter unicode61 remove_diacritics 2"


def upgrade() -> None:
    op.create_table(
        "speech_segments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("video_id", sa.Integer, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("text", sa.String, nullable=False),
        sa.Column("language", sa.String),
        sa.Column("avg_logprob", sa.Float, nullable=False),
        sa.Column("no_speech_prob", sa.Float, nullable=False),
    )
    op.create_index("ix_speech_segments_video_start", "speech_segments", ["video_id", "start"])
    op.create_table(
        "speech_words",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("speech_segments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("word", sa.String, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
    )
    op.create_index("ix_speech_words_segment_position", "speech_words", ["segment_id", "position"])
    for index, table, column in (("speech_text", "speech_segments", "text"), ("speech_word_text", "speech_words", "word")):
        op.execute(
            f"CREATE VIRTUAL TABLE {index} USING fts5({column}, content='{table}', content_rowid='id',"
            f" tokenize='{_TOKENIZER}')"
        )
        # foreign-key cascades fire these too: a video replaced or pruned leaves nothing in the index
        op.execute(
            f"CREATE TRIGGER {index}_added AFTER INSERT ON {table} BEGIN"
            f" INSERT INTO {index}(rowid, {column}) VALUES (new.id, new.{column}); END"
        )
        op.execute(
            f"CREATE TRIGGER {index}_removed AFTER DELETE ON {table} BEGIN"
            f" INSERT INTO {index}({index}, rowid, {column}) VALUES ('delete', old.id, old.{column}); END"
        )


def downgrade() -> None:
    for index in ("speech_word_text", "speech_text"):
        op.execute(f"DROP TABLE {index}")
    op.drop_table("speech_words")
    op.drop_table("speech_segments")
