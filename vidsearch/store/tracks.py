"""The catalog's tracked things: a video's detections with their tracks and the appearances that summarize them,
written with the video; and retracking's reads and writes, which turn untracked objects into tracks later."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from ..records import Appearance, Box, Detection, FoundPerson
from .meta import bump_generation, new_vector_ids
from .schema import appearances_t, detection_values, frames_t, objects_t, persons_t


def insert_tracks(
    conn: Connection, video_id: int, frame_ids: Sequence[int], persons: Sequence[FoundPerson],
    person_ids: np.ndarray, appearances: Sequence[Appearance],
) -> None:
    """Tracked detections (`frame_ids` by their frame positions, `person_ids` in their order) and the appearances
    of their tracks, inside the transaction that writes them."""
    if persons:
        conn.execute(
            persons_t.insert(),
            [
                {
                    "id": int(pid), "frame_id": int(frame_ids[p.frame_position]),
                    **detection_values(p.detection), "track": p.track, "embedded": p.embedded,
                }
                for pid, p in zip(person_ids, persons)
            ],
        )
    if appearances:
        conn.execute(
            appearances_t.insert(),
            [
                {
                    "video_id": video_id, "track": a.track, "start": a.start, "end": a.end,
                    "detections": a.detections, "best_person_id": int(person_ids[a.best]),
                    "pooled": a.pooled.astype(np.float32).tobytes(),
                    "attributes": json.dumps(a.attributes) if a.attributes else None, "label": a.label,
                }
                for a in appearances
            ],
        )


class TrackCatalog:
    """The tracks of one catalog (its engine), as retracking reads and adds them."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def objects_of_video(self, video_id: int, labels: Sequence[str]) -> dict[int, list[Detection]]:
        """A video's untracked detections of some classes, by frame id."""
        query = (
            select(objects_t)
            .join(frames_t, frames_t.c.id == objects_t.c.frame_id)
            .where(frames_t.c.video_id == video_id, objects_t.c.label.in_(list(labels)))
            .order_by(objects_t.c.id)
        )
        found: dict[int, list[Detection]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                found.setdefault(r.frame_id, []).append(
                    Detection(box=Box(r.x1, r.y1, r.x2, r.y2), score=r.score, label=r.label)
                )
        return found

    def last_track(self, video_id: int) -> int:
        """The largest track number of a video's detections (-1 for none)."""
        query = (
            select(func.coalesce(func.max(persons_t.c.track), -1))
            .join(frames_t, frames_t.c.id == persons_t.c.frame_id).where(frames_t.c.video_id == video_id)
        )
        with self.engine.connect() as conn:
            return int(conn.scalar(query))

    def add_tracks(
        self, video_id: int, frame_ids: Sequence[int], persons: Sequence[FoundPerson],
        appearances: Sequence[Appearance], labels: Sequence[str], before_commit: Callable[[np.ndarray], None],
    ) -> np.ndarray:
        """Tracks of newly tracked classes into an indexed video, in one transaction: their detections (`frame_ids`
        by the persons' frame positions) and appearances join it, and its objects of `labels` leave, being tracked
        now. `before_commit(person_ids)` runs inside the transaction (the shard with the new vectors); returns the
        new detections' ids."""
        with self.engine.begin() as conn:
            person_ids = new_vector_ids(conn, len(persons))
            insert_tracks(conn, video_id, frame_ids, persons, person_ids, appearances)
            video_frames = select(frames_t.c.id).where(frames_t.c.video_id == video_id)
            conn.execute(
                objects_t.delete().where(objects_t.c.label.in_(list(labels)), objects_t.c.frame_id.in_(video_frames))
            )
            bump_generation(conn)
            before_commit(person_ids)
        return person_ids
