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
    """One tracked thing's track through a video (a person, a car...): its class, span, best crop, pooled embedding
    and attributes (for vehicles, the direction it travelled among them)."""

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
    label: Mapped[str] = mapped_column(String, server_default="person")  # the class most of its detections have


class ObjectRow(DetectionColumns, Base):
    """A detection of another class than persons (a car, a bag...) in a sampled frame; it has no vector."""

    __tablename__ = "objects"
    __table_args__ = (Index("ix_objects_label_frame", "label", "frame_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    frame_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("frames.id", ondelete="CASCADE"))


class FaceGroupRow(Base):
    """A person as face clustering found them across the archive, named by the user or not."""

    __tablename__ = "face_groups"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused: a forgotten group's id stays unused
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String, index=True)


class FaceIdentityRow(Base):
    """The faces of one person appearance in one video (its person track, or faces alike in a frame without
    persons), pooled: the unit that groups are made of."""

    __tablename__ = "face_identities"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[int] = mapped_column(Integer, ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    appearance_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("appearances.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("face_groups.id", ondelete="SET NULL"), index=True
    )
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    best_face_id: Mapped[int | None] = mapped_column(Integer)
    pooled: Mapped[bytes] = mapped_column(LargeBinary)  # float32: the mean of its faces' descriptors


class FaceRow(Base):
    """A face in a sampled frame; its id is also its descriptor's id in the face index."""

    __tablename__ = "faces"
    __table_args__ = {"sqlite_autoincrement": True}  # a face's thumbnail is kept by its id
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("face_identities.id", ondelete="CASCADE"), index=True
    )
    frame_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)  # float32


class ScreenTextRow(Base):
    """A text read on screen over a span of consecutive kept frames, kept at its best reading (frame, box, string,
    confidence); `within_*` is the detection (a vehicle) it was read inside. Its folded form is full-text indexed in
    screen_texts_fts (FTS5, trigram), kept in step by triggers (migration 0008)."""

    __tablename__ = "screen_texts"
    __table_args__ = (
        Index("ix_screen_texts_video_start", "video_id", "start"), Index("ix_screen_texts_frame", "frame_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[int] = mapped_column(Integer, ForeignKey("videos.id", ondelete="CASCADE"))
    frame_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("frames.id", ondelete="CASCADE"))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String)
    folded: Mapped[str] = mapped_column(String)  # screen_text.fold: what queries are matched against
    confidence: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    within_label: Mapped[str | None] = mapped_column(String)
    within_score: Mapped[float | None] = mapped_column(Float)
    within_x1: Mapped[float | None] = mapped_column(Float)
    within_y1: Mapped[float | None] = mapped_column(Float)
    within_x2: Mapped[float | None] = mapped_column(Float)
    within_y2: Mapped[float | None] = mapped_column(Float)


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


videos_t, frames_t, persons_t, meta_t, appearances_t, objects_t = (
    m.__table__ for m in (VideoRow, FrameRow, PersonRow, MetaRow, AppearanceRow, ObjectRow)
)
face_groups_t, face_identities_t, faces_t = (m.__table__ for m in (FaceGroupRow, FaceIdentityRow, FaceRow))
screen_texts_t, speech_segments_t, speech_words_t = (
    m.__table__ for m in (ScreenTextRow, SpeechSegmentRow, SpeechWordRow)
)


# FTS5 virtual tables (made by their migrations, kept in step by triggers); SQLAlchemy models none of them, nor
# the shadow tables FTS5 keeps: text on screen (trigram), and speech segments and words (porter stemming, BM25)
FULL_TEXT_TABLES = ("screen_texts_fts", "speech_text", "speech_word_text")


def modelled(name: str | None, type_: str, _parent_names=None) -> bool:
    """Whether a name in the database belongs to the models (Alembic's include_name): not a full-text table."""
    return not (type_ == "table" and any(name == t or name.startswith(f"{t}_") for t in FULL_TEXT_TABLES))


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
