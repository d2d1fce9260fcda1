"""The catalog's tables (SQLAlchemy Core), their Alembic migrations, and how SQLite is set up on each connection."""

from __future__ import annotations

from importlib import resources

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, true
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..records import Detection


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


class VideoRow(Base):
    __tablename__ = "videos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)  # "indexed" or "failed"
    error: Mapped[str | None] = mapped_column(String)
    duration: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    timeline: Mapped[str | None] = mapped_column(String)
    # what the file's header says the video lasts: more than duration when the file is cut short
    declared_duration: Mapped[float | None] = mapped_column(Float)
    sample_fps: Mapped[float | None] = mapped_column(Float)
    frames_skipped: Mapped[int] = mapped_column(Integer, server_default="0")  # duplicates of a kept frame
    reader: Mapped[str | None] = mapped_column(String)  # the library that decoded it
    indexed_at: Mapped[float] = mapped_column(Float)
    camera: Mapped[str | None] = mapped_column(String, index=True)
    clock_start: Mapped[float | None] = mapped_column(Float)  # UTC seconds since the epoch, where known
    time_source: Mapped[str | None] = mapped_column(String)  # name, metadata, mtime or none
    clock_zone: Mapped[str | None] = mapped_column(String)  # IANA zone the video's times are shown in


class FrameRow(Base):
    """A sampled frame; its id is also its vector's id in the frame index."""

    __tablename__ = "frames"
    __table_args__ = (Index("ix_frames_video_t", "video_id", "t"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    video_id: Mapped[int] = mapped_column(Integer, ForeignKey("videos.id", ondelete="CASCADE"))
    frame_index: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)


class DetectionColumns:
    """What the detector said of one object in a frame: class, confidence, box in source pixels."""

    label: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)


def detection_values(detection: Detection) -> dict:
    box = detection.box
    return {"label": detection.label, "score": detection.score, "x1": box.x1, "y1": box.y1, "x2": box.x2, "y2": box.y2}


class PersonRow(DetectionColumns, Base):
    """A detected person; its id is also its vector's id in the person index."""

    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_frame", "frame_id"), Index("ix_persons_embedded", "embedded"))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    frame_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("frames.id", ondelete="CASCADE"))
    track: Mapped[int] = mapped_column(Integer, server_default="-1")  # the same person across a video's frames
    embedded: Mapped[bool] = mapped_column(Boolean, server_default=true())  # has a vector in the person index


class AppearanceRow(Base):
    """One person's track through a video: its span, its best crop, its pooled embedding and attributes."""

    __tablename__ = "appearances"
    __table_args__ = (Index("ix_appearances_video_track", "video_id", "track", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[int] = mapped_column(Integer, ForeignKey("videos.id", ondelete="CASCADE"))
    track: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    detections: Mapped[int] = mapped_column(Integer)
    best_person_id: Mapped[int | None] = mapped_column(BigInteger)
    pooled: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 vector
    attributes: Mapped[str | None] = mapped_column(String)  # JSON: group -> label -> probability


class ObjectRow(DetectionColumns, Base):
    """A detection of another class than persons (a car, a bag...) in a sampled frame; it has no vector."""

    __tablename__ = "objects"
    __table_args__ = (Index("ix_objects_label_frame", "label", "frame_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    frame_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("frames.id", ondelete="CASCADE"))


class SpeechSegmentRow(Base):
    """A stretch of speech in a video's sound, transcribed; its text is in the full-text index speech_text."""

    __tablename__ = "speech_segments"
    __table_args__ = (Index("ix_speech_segments_video_start", "video_id", "start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[int] = mapped_column(Integer, ForeignKey("videos.id", ondelete="CASCADE"))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(String)
    language: Mapped[str | None] = mapped_column(String)
    avg_logprob: Mapped[float] = mapped_column(Float)
    no_speech_prob: Mapped[float] = mapped_column(Float)


class SpeechWordRow(Base):
    """One timed word of a speech segment; in the full-text index speech_word_text, to find which words matched."""

    __tablename__ = "speech_words"
    __table_args__ = (Index("ix_speech_words_segment_position", "segment_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(Integer, ForeignKey("speech_segments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # its place in the segment, from 0
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    word: Mapped[str] = mapped_column(String)
    probability: Mapped[float] = mapped_column(Float)


# SQLite FTS5 indexes over speech_segments.text and speech_words.word (porter stemming, BM25), kept by triggers;
# virtual tables, so not models: these are their names and the prefix of the shadow tables FTS5 makes for them
FULL_TEXT_TABLES = ("speech_text", "speech_word_text")


def is_full_text_table(name: str) -> bool:
    return any(name == table or name.startswith(f"{table}_") for table in FULL_TEXT_TABLES)


videos_t, frames_t, persons_t, meta_t, appearances_t, objects_t, speech_segments_t, speech_words_t = (
    m.__table__ for m in (
        VideoRow, FrameRow, PersonRow, MetaRow, AppearanceRow, ObjectRow, SpeechSegmentRow, SpeechWordRow,
    )
)


def alembic_config(connection: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("vidsearch.migrations")))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode a commit is on disk when it returns, so an indexed video survives a power cut too
    # (NORMAL survives a killed process only); scripts/bench_commit.py measures what it costs per video
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
