"""The catalog: what every vector means (video, time, box, score), in SQLite through SQLAlchemy."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, create_engine, event, func, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .errors import ArchiveError
from .records import Box, FoundPerson, Item, Kind, SampledFrame, VideoFile, VideoInfo


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
    sample_fps: Mapped[float | None] = mapped_column(Float)
    frames_skipped: Mapped[int] = mapped_column(Integer, server_default="0")  # duplicates of a kept frame
    reader: Mapped[str | None] = mapped_column(String)  # the library that decoded it
    indexed_at: Mapped[float] = mapped_column(Float)


class FrameRow(Base):
    """A sampled frame; its id is also its vector's id in the frame index."""

    __tablename__ = "frames"
    __table_args__ = (Index("ix_frames_video_t", "video_id", "t"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    video_id: Mapped[int] = mapped_column(Integer, ForeignKey("videos.id", ondelete="CASCADE"))
    frame_index: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)


class PersonRow(Base):
    """A detected person; its id is also its vector's id in the person index."""

    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_frame", "frame_id"), Index("ix_persons_embedded", "embedded"))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    frame_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("frames.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    track: Mapped[int] = mapped_column(Integer, server_default="-1")  # the same person across a video's frames
    embedded: Mapped[bool] = mapped_column(Boolean, server_default=true())  # has a vector in the person index


videos_t, frames_t, persons_t, meta_t = (m.__table__ for m in (VideoRow, FrameRow, PersonRow, MetaRow))

NEXT_ID = "next_vector_id"


@dataclass(frozen=True, slots=True)
class CatalogVideo:
    id: int
    path: Path
    size: int
    mtime_ns: int
    fingerprint: str | None
    status: str
    error: str | None
    frames_skipped: int


def _alembic_config(connection: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("vidsearch.migrations")))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


class Catalog:
    """One SQLite file; every write is one transaction, so a crash leaves the last committed state."""

    def __init__(self, path: Path):
        self.path = path
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", _sqlite_pragmas)

    def ensure_schema(self) -> None:
        """Create a new catalog at the newest revision; refuse one at another revision."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        head = head_revision()
        with self.engine.begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            fresh = current is None and not conn.dialect.has_table(conn, "videos")
            if fresh:
                command.upgrade(_alembic_config(conn), "head")
                return
        if current == head:
            return
        from alembic.script import ScriptDirectory

        known = {rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
        if current not in known:
            raise ArchiveError(
                f"{self.path} was made by a newer vidsearch (schema {current}); upgrade vidsearch to open it"
            )
        raise ArchiveError(
            f"{self.path} has schema {current}, this vidsearch needs {head}: run `vidsearch upgrade` first"
        )

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> None:
        from alembic import command

        with self.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")

    def close(self) -> None:
        self.engine.dispose()

    # --- meta -----------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(meta_t.c.value).where(meta_t.c.key == key))

    def set_meta(self, values: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            for key, value in values.items():
                _upsert_meta(conn, key, value)

    # --- videos ---------------------------------------------------------------------------------------

    def video(self, path: Path) -> CatalogVideo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(videos_t).where(videos_t.c.path == str(path))).first()
        return _catalog_video(row) if row else None

    def videos(self, status: str | None = None) -> list[CatalogVideo]:
        query = select(videos_t).order_by(videos_t.c.path)
        if status:
            query = query.where(videos_t.c.status == status)
        with self.engine.connect() as conn:
            return [_catalog_video(row) for row in conn.execute(query)]

    def record_failure(self, video: VideoFile, reason: str) -> None:
        """Replace whatever the catalog held for this path with a failed entry."""
        with self.engine.begin() as conn:
            conn.execute(videos_t.delete().where(videos_t.c.path == str(video.path)))
            conn.execute(
                videos_t.insert().values(
                    path=str(video.path), size=video.size, mtime_ns=video.mtime_ns,
                    status="failed", error=reason, indexed_at=time.time(),
                )
            )

    def touch(self, video_id: int, mtime_ns: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(videos_t.update().where(videos_t.c.id == video_id).values(mtime_ns=mtime_ns))

    def remove(self, video_ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(videos_t.delete().where(videos_t.c.id.in_(video_ids)))

    def replace_video(
        self,
        video: VideoFile,
        fingerprint: str,
        info: VideoInfo,
        reader: str,
        sample_fps: float,
        frames: Sequence[SampledFrame],
        frames_skipped: int,
        persons: Sequence[FoundPerson],
        before_commit,
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """Store one video's frames and persons, replacing an older entry of the same path, in one transaction.

        `before_commit(video_id, frame_ids, person_ids)` runs inside the transaction, so the vectors'
        Parquet shard is on disk before the catalog says the video is indexed.
        """
        with self.engine.begin() as conn:
            conn.execute(videos_t.delete().where(videos_t.c.path == str(video.path)))
            video_id = conn.execute(
                videos_t.insert().values(
                    path=str(video.path), size=video.size, mtime_ns=video.mtime_ns, fingerprint=fingerprint,
                    status="indexed", error=None, duration=info.duration, fps=info.fps, width=info.width,
                    height=info.height, frame_count=info.frame_count, timeline=info.timeline,
                    reader=reader, sample_fps=sample_fps, frames_skipped=frames_skipped, indexed_at=time.time(),
                )
            ).inserted_primary_key[0]
            first = int(conn.scalar(select(meta_t.c.value).where(meta_t.c.key == NEXT_ID)) or 1)
            frame_ids = np.arange(first, first + len(frames), dtype=np.int64)
            person_ids = np.arange(first + len(frames), first + len(frames) + len(persons), dtype=np.int64)
            _upsert_meta(conn, NEXT_ID, str(first + len(frames) + len(persons)))
            if frames:
                conn.execute(
                    frames_t.insert(),
                    [
                        {"id": int(fid), "video_id": video_id, "frame_index": f.frame_index, "t": f.t}
                        for fid, f in zip(frame_ids, frames)
                    ],
                )
            if persons:
                conn.execute(
                    persons_t.insert(),
                    [
                        {
                            "id": int(pid), "frame_id": int(frame_ids[p.frame_position]),
                            "label": p.detection.label, "score": p.detection.score,
                            "x1": p.detection.box.x1, "y1": p.detection.box.y1,
                            "x2": p.detection.box.x2, "y2": p.detection.box.y2,
                            "track": p.track, "embedded": p.embedded,
                        }
                        for pid, p in zip(person_ids, persons)
                    ],
                )
            before_commit(video_id, frame_ids, person_ids)
        return video_id, frame_ids, person_ids

    # --- vectors' meaning -----------------------------------------------------------------------------

    def vector_ids(self, kind: Kind) -> np.ndarray:
        query = select(frames_t.c.id) if kind == "frame" else select(persons_t.c.id).where(persons_t.c.embedded)
        with self.engine.connect() as conn:
            return np.fromiter(conn.scalars(query), dtype=np.int64)

    def vector_ids_of_video(self, video_id: int) -> dict[Kind, np.ndarray]:
        frames = select(frames_t.c.id).where(frames_t.c.video_id == video_id)
        persons = (
            select(persons_t.c.id)
            .join(frames_t, frames_t.c.id == persons_t.c.frame_id)
            .where(frames_t.c.video_id == video_id, persons_t.c.embedded)
        )
        with self.engine.connect() as conn:
            return {
                "frame": np.fromiter(conn.scalars(frames), dtype=np.int64),
                "person": np.fromiter(conn.scalars(persons), dtype=np.int64),
            }

    def video_ids_of(self, kind: Kind, vector_ids: Iterable[int]) -> set[int]:
        ids = [int(i) for i in vector_ids]
        query = (
            select(frames_t.c.video_id).where(frames_t.c.id.in_(ids))
            if kind == "frame"
            else select(frames_t.c.video_id).join(persons_t, persons_t.c.frame_id == frames_t.c.id).where(
                persons_t.c.id.in_(ids)
            )
        )
        with self.engine.connect() as conn:
            return set(conn.scalars(query.distinct()))

    def items(self, kind: Kind, vector_ids: Sequence[int]) -> dict[int, tuple[Item, Path]]:
        ids = [int(i) for i in vector_ids]
        with self.engine.connect() as conn:
            if kind == "frame":
                rows = conn.execute(
                    select(frames_t, videos_t.c.path)
                    .join(videos_t, videos_t.c.id == frames_t.c.video_id)
                    .where(frames_t.c.id.in_(ids))
                ).mappings()
                return {
                    r["id"]: (
                        Item(vector_id=r["id"], kind="frame", frame_index=r["frame_index"], t=r["t"]),
                        Path(r["path"]),
                    )
                    for r in rows
                }
            rows = conn.execute(
                select(persons_t, frames_t.c.frame_index, frames_t.c.t, videos_t.c.path)
                .join(frames_t, frames_t.c.id == persons_t.c.frame_id)
                .join(videos_t, videos_t.c.id == frames_t.c.video_id)
                .where(persons_t.c.id.in_(ids))
            ).mappings()
            return {r["id"]: (_person_item(r), Path(r["path"])) for r in rows}

    def persons_of_video(self, video_id: int) -> list[tuple[Item, int, bool]]:
        """Every person detected in a video, embedded or not, with its track, in time order."""
        query = (
            select(persons_t, frames_t.c.frame_index, frames_t.c.t)
            .join(frames_t, frames_t.c.id == persons_t.c.frame_id)
            .where(frames_t.c.video_id == video_id)
            .order_by(frames_t.c.t, persons_t.c.id)
        )
        with self.engine.connect() as conn:
            return [
                (_person_item(r), r["track"], r["embedded"]) for r in conn.execute(query).mappings()
            ]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "videos": conn.scalar(select(func.count()).where(videos_t.c.status == "indexed")),
                "frames": conn.scalar(select(func.count()).select_from(frames_t)),
                "persons": conn.scalar(select(func.count()).select_from(persons_t)),
                "person_vectors": conn.scalar(select(func.count()).where(persons_t.c.embedded)),
                "frames_skipped": conn.scalar(select(func.coalesce(func.sum(videos_t.c.frames_skipped), 0))),
                "video_seconds": conn.scalar(select(func.coalesce(func.sum(videos_t.c.duration), 0.0))),
            }


def _upsert_meta(conn: Connection, key: str, value: str) -> None:
    from sqlalchemy.dialects.sqlite import insert

    statement = insert(meta_t).values(key=key, value=value)
    conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def _person_item(row) -> Item:
    return Item(
        vector_id=row["id"], kind="person", frame_index=row["frame_index"], t=row["t"],
        box=Box(row["x1"], row["y1"], row["x2"], row["y2"]), detector_score=row["score"],
    )


def _catalog_video(row) -> CatalogVideo:
    return CatalogVideo(
        id=row.id, path=Path(row.path), size=row.size, mtime_ns=row.mtime_ns,
        fingerprint=row.fingerprint, status=row.status, error=row.error, frames_skipped=row.frames_skipped,
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
