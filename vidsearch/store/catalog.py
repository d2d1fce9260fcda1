"""The catalog: what every vector means (video, time, box, score), in SQLite through SQLAlchemy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Connection

from ..errors import ArchiveError
from ..records import (
    Box, CatalogVideo, Item, Kind, ProcessedVideo, SampledFrame, StoredAppearance, StoredModel, StoredScreenText,
    VideoFile, VideoOrigin,
)
from .faces import insert_faces
from .meta import GENERATION, MODEL_KEY, NEXT_VIDEO_ID, bump_generation, new_vector_ids, upsert_meta
from .schema import (
    alembic_config, appearances_t, detection_values, frames_t, head_revision, meta_t, objects_t, persons_t,
    screen_texts_t, sqlite_pragmas, videos_t,
)
from .screen_text import find_screen_texts, screen_text_rows
from .speech import insert_speech
from .tracks import insert_tracks


class Catalog:
    """One SQLite file; every write is one transaction, so a crash leaves the last committed state."""

    def __init__(self, path: Path):
        self.path = path
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", sqlite_pragmas)

    def ensure_schema(self) -> None:
        """Create a new catalog at the newest revision; refuse one at another revision."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        head = head_revision()
        with self.engine.begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            fresh = current is None and not conn.dialect.has_table(conn, "videos")
            if fresh:
                command.upgrade(alembic_config(conn), "head")
                return
        if current == head:
            return
        from alembic.script import ScriptDirectory

        known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
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
            command.upgrade(alembic_config(conn), "head")

    def close(self) -> None:
        self.engine.dispose()

    # --- meta -----------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(meta_t.c.value).where(meta_t.c.key == key))

    def set_meta(self, values: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            for key, value in values.items():
                upsert_meta(conn, key, value)

    def stored_model(self) -> StoredModel | None:
        """The embedding model of the archive's vectors; None before the first video is indexed."""
        saved = self.get_meta(MODEL_KEY)
        return StoredModel.from_json(json.loads(saved)) if saved else None

    def record_model(self, model: StoredModel) -> None:
        self.set_meta({MODEL_KEY: json.dumps(model.to_json())})

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

    def generation(self) -> int:
        """A number that changes with every commit that adds, replaces or removes a video: a reader holding
        indexes loaded earlier compares it to see that another process wrote."""
        return int(self.get_meta(GENERATION) or 0)

    def origins(self, paths: Iterable[Path]) -> dict[Path, VideoOrigin]:
        """The camera and clock of indexed videos, by path."""
        named = sorted({str(p) for p in paths})
        with self.engine.connect() as conn:
            rows = conn.execute(select(videos_t).where(videos_t.c.path.in_(named))).all() if named else []
        return {video.path: video.origin for video in map(_catalog_video, rows) if video.origin is not None}

    def record_failure(self, video: VideoFile, reason: str) -> None:
        """Replace whatever the catalog held for this path with a failed entry."""
        with self.engine.begin() as conn:
            _replace_row(conn, video, status="failed", error=reason)

    def touch(self, video_id: int, mtime_ns: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(videos_t.update().where(videos_t.c.id == video_id).values(mtime_ns=mtime_ns))

    def remove(self, video_ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(videos_t.delete().where(videos_t.c.id.in_(video_ids)))
            bump_generation(conn)

    def replace_video(
        self, video: VideoFile, fingerprint: str, processed: ProcessedVideo,
        before_commit: Callable[[int, np.ndarray, np.ndarray], None], origin: VideoOrigin | None = None,
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """Store one video's frames, persons, objects and appearances, replacing an older entry of the same path, in
        one transaction; returns the video's id and the vector ids given to its frames and persons.

        `before_commit(video_id, frame_ids, person_ids)` runs inside the transaction, so the vectors'
        Parquet shard is on disk before the catalog says the video is indexed.
        """
        info, frames, persons = processed.info, processed.frames, processed.persons
        with self.engine.begin() as conn:
            video_id = _replace_row(
                conn, video, fingerprint=fingerprint, status="indexed", error=None, duration=info.duration,
                fps=info.fps, width=info.width, height=info.height, frame_count=info.frame_count,
                timeline=info.timeline, declared_duration=info.declared_duration, reader=processed.reader,
                sample_fps=processed.sample_fps, frames_skipped=processed.frames_skipped, **_origin_values(origin),
            )
            vector_ids = new_vector_ids(conn, len(frames) + len(persons))
            frame_ids, person_ids = vector_ids[: len(frames)], vector_ids[len(frames) :]
            if frames:
                conn.execute(
                    frames_t.insert(),
                    [
                        {"id": int(fid), "video_id": video_id, "frame_index": f.frame_index, "t": f.t}
                        for fid, f in zip(frame_ids, frames)
                    ],
                )
            insert_tracks(conn, video_id, frame_ids, persons, person_ids, processed.appearances)
            if processed.objects:
                conn.execute(
                    objects_t.insert(),
                    [
                        {"frame_id": int(frame_ids[o.frame_position]), **detection_values(o.detection)}
                        for o in processed.objects
                    ],
                )
            if processed.texts:
                conn.execute(screen_texts_t.insert(), screen_text_rows(video_id, frame_ids, processed.texts))
            insert_faces(conn, video_id, frames, frame_ids, processed.faces)
            insert_speech(conn, video_id, processed.speech)
            before_commit(video_id, frame_ids, person_ids)
        return video_id, frame_ids, person_ids

    def screen_texts(self, query: str, max_edits: int = 0) -> list[tuple[StoredScreenText, int]]:
        """Text spans holding `query` (folded: see screen_text.fold) within `max_edits` edits, with their edits."""
        with self.engine.connect() as conn:
            return find_screen_texts(conn, query, max_edits)

    def sampled_frames(self, video_id: int) -> list[tuple[int, SampledFrame]]:
        """A video's kept frames in time order, with their ids."""
        query = select(frames_t).where(frames_t.c.video_id == video_id).order_by(frames_t.c.t)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings()
            return [(r["id"], SampledFrame(frame_index=r["frame_index"], t=r["t"])) for r in rows]

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
        ids = _storable(vector_ids)
        owner = (
            select(frames_t.c.video_id) if kind == "frame"
            else select(frames_t.c.video_id).join(persons_t, persons_t.c.frame_id == frames_t.c.id)
        )
        column = frames_t.c.id if kind == "frame" else persons_t.c.id
        found: set[int] = set()
        with self.engine.connect() as conn:
            # SQLite binds at most SQLITE_MAX_VARIABLE_NUMBER values in one statement (250 000 in some builds)
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                chunk = ids[start : start + _IDS_PER_STATEMENT]
                found.update(conn.scalars(owner.where(column.in_(chunk)).distinct()))
        return found

    def vector_fingerprint(self, kind: Kind) -> list[int]:
        """(count, largest id) of a kind's vectors: ids are never reused, so any change to the set changes it."""
        table = frames_t if kind == "frame" else persons_t
        query = select(func.count(), func.coalesce(func.max(table.c.id), 0))
        if kind == "person":
            query = query.where(persons_t.c.embedded)
        with self.engine.connect() as conn:
            return list(conn.execute(query).one())

    def items(self, kind: Kind, vector_ids: Sequence[int]) -> dict[int, tuple[Item, Path]]:
        ids = _storable(vector_ids)
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

    def vector_ids_within(
        self, kind: Kind, video_ids: Sequence[int], start: float | None, end: float | None,
        objects: Sequence[str] = (),
    ) -> np.ndarray:
        """Vector ids of some videos, optionally between two times and only in frames showing one of `objects`;
        served by the (video_id, t) and (label, frame_id) indexes and the persons' frame index."""
        query = (
            select(frames_t.c.id) if kind == "frame"
            else select(persons_t.c.id).join(frames_t, frames_t.c.id == persons_t.c.frame_id).where(persons_t.c.embedded)
        ).where(frames_t.c.video_id.in_([int(v) for v in video_ids]))
        if start is not None:
            query = query.where(frames_t.c.t >= start)
        if end is not None:
            query = query.where(frames_t.c.t <= end)
        if objects:
            # a class may be kept as objects per frame, or tracked (persons, vehicles) as detections with crops
            showing = select(objects_t.c.frame_id).where(objects_t.c.label.in_(objects)).union(
                select(persons_t.c.frame_id).where(persons_t.c.label.in_(objects))
            )
            query = query.where(frames_t.c.id.in_(showing))
        with self.engine.connect() as conn:
            return np.fromiter(conn.scalars(query), dtype=np.int64)

    def appearances_of(self, person_ids: Sequence[int]) -> dict[int, StoredAppearance]:
        """The appearance each person belongs to, by person id."""
        query = (
            select(persons_t.c.id.label("person_id"), appearances_t, videos_t.c.path)
            .join(frames_t, frames_t.c.id == persons_t.c.frame_id)
            .join(
                appearances_t,
                (appearances_t.c.video_id == frames_t.c.video_id) & (appearances_t.c.track == persons_t.c.track),
            )
            .join(videos_t, videos_t.c.id == frames_t.c.video_id)
            .where(persons_t.c.id.in_(_storable(person_ids)))
        )
        with self.engine.connect() as conn:
            return {r["person_id"]: _stored_appearance(r) for r in conn.execute(query).mappings()}

    def appearances_of_video(self, video_id: int) -> list[StoredAppearance]:
        query = (
            select(appearances_t, videos_t.c.path)
            .join(videos_t, videos_t.c.id == appearances_t.c.video_id)
            .where(appearances_t.c.video_id == video_id)
            .order_by(appearances_t.c.start, appearances_t.c.track)
        )
        with self.engine.connect() as conn:
            return [_stored_appearance(r) for r in conn.execute(query).mappings()]

    def pooled_vector(self, appearance_id: int) -> np.ndarray | None:
        with self.engine.connect() as conn:
            blob = conn.scalar(select(appearances_t.c.pooled).where(appearances_t.c.id == appearance_id))
        return None if blob is None else np.frombuffer(blob, dtype=np.float32)

    def cameras(self) -> list[dict]:
        """Per camera: indexed videos, seconds of video and vectors (frames and embedded crops)."""
        frames = (
            select(frames_t.c.video_id, func.count().label("n")).group_by(frames_t.c.video_id).subquery()
        )
        persons = (
            select(frames_t.c.video_id, func.count().label("n"))
            .join(persons_t, persons_t.c.frame_id == frames_t.c.id).where(persons_t.c.embedded)
            .group_by(frames_t.c.video_id).subquery()
        )
        query = (
            select(
                videos_t.c.camera, func.count().label("videos"),
                func.coalesce(func.sum(videos_t.c.duration), 0.0).label("seconds"),
                func.coalesce(func.sum(frames.c.n), 0).label("frame_vectors"),
                func.coalesce(func.sum(persons.c.n), 0).label("person_vectors"),
            )
            .outerjoin(frames, frames.c.video_id == videos_t.c.id)
            .outerjoin(persons, persons.c.video_id == videos_t.c.id)
            .where(videos_t.c.status == "indexed")
            .group_by(videos_t.c.camera).order_by(videos_t.c.camera)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def appearances_per_label(self) -> dict[str, int]:
        """How many appearances of each tracked class (person, car...) the archive holds."""
        label = appearances_t.c.label
        query = select(label, func.count()).group_by(label).order_by(label)
        with self.engine.connect() as conn:
            return {label: count for label, count in conn.execute(query)}

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "videos": conn.scalar(select(func.count()).where(videos_t.c.status == "indexed")),
                "frames": conn.scalar(select(func.count()).select_from(frames_t)),
                "persons": conn.scalar(select(func.count()).select_from(persons_t)),
                "appearances": conn.scalar(select(func.count()).select_from(appearances_t)),
                "objects": conn.scalar(select(func.count()).select_from(objects_t)),
                "person_vectors": conn.scalar(select(func.count()).where(persons_t.c.embedded)),
                "frames_skipped": conn.scalar(select(func.coalesce(func.sum(videos_t.c.frames_skipped), 0))),
                "video_seconds": conn.scalar(select(func.coalesce(func.sum(videos_t.c.duration), 0.0))),
            }


_IDS_PER_STATEMENT = 50_000


def _storable(ids: Iterable[int]) -> list[int]:
    """Ids SQLite can hold (64-bit); a larger number, as a request may carry, names nothing."""
    return [int(i) for i in ids if -(2**63) <= int(i) < 2**63]


def _replace_row(conn: Connection, video: VideoFile, **values) -> int:
    """Put a new row for the video's path in place of any old one, under a new id; returns the id."""
    video_id = _new_video_id(conn)
    conn.execute(videos_t.delete().where(videos_t.c.path == str(video.path)))
    conn.execute(
        videos_t.insert().values(
            id=video_id, path=str(video.path), size=video.size, mtime_ns=video.mtime_ns, indexed_at=time.time(),
            **values,
        )
    )
    bump_generation(conn)
    return video_id


def _new_video_id(conn: Connection) -> int:
    """A video id never given before, taken before the old row of a replaced video is deleted: SQLite alone would
    give the new row the deleted one's id when it was the largest, and the new shard would then overwrite the old
    video's shard before the catalog commits."""
    counter = int(conn.scalar(select(meta_t.c.value).where(meta_t.c.key == NEXT_VIDEO_ID)) or 1)
    video_id = max(counter, int(conn.scalar(select(func.coalesce(func.max(videos_t.c.id), 0)))) + 1)
    upsert_meta(conn, NEXT_VIDEO_ID, str(video_id + 1))
    return video_id


def _person_item(row) -> Item:
    return Item(
        vector_id=row["id"], kind="person", frame_index=row["frame_index"], t=row["t"],
        box=Box(row["x1"], row["y1"], row["x2"], row["y2"]), detector_score=row["score"], label=row["label"],
    )


def _stored_appearance(row) -> StoredAppearance:
    return StoredAppearance(
        id=row["id"], video=Path(row["path"]), track=row["track"], start=row["start"], end=row["end"],
        detections=row["detections"], best_person_id=row["best_person_id"],
        attributes=json.loads(row["attributes"]) if row["attributes"] else {}, label=row["label"],
    )


def _origin_values(origin: VideoOrigin | None) -> dict:
    if origin is None:
        return {}
    return {
        "camera": origin.camera, "clock_start": origin.start, "time_source": origin.time_source,
        "clock_zone": origin.zone,
    }


def _catalog_video(row) -> CatalogVideo:
    origin = (
        VideoOrigin(row.camera, row.clock_start, row.time_source or "none", row.clock_zone or "UTC")
        if row.camera is not None else None
    )
    return CatalogVideo(
        id=row.id, path=Path(row.path), size=row.size, mtime_ns=row.mtime_ns,
        fingerprint=row.fingerprint, status=row.status, error=row.error, frames_skipped=row.frames_skipped,
        duration=row.duration, declared_duration=row.declared_duration, origin=origin, sample_fps=row.sample_fps,
        reader=row.reader,
    )
