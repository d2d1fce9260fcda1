"""The catalog's faces: each face with its descriptor, the identities that pool one person appearance's faces, and
the groups (people) with their names; and forgetting them for good."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from ..faces.records import StoredFace
from ..records import Box, FoundFace, SampledFrame, VideoOrigin
from .schema import appearances_t, face_groups_t, face_identities_t, faces_t, frames_t, videos_t


@dataclass(frozen=True, slots=True, eq=False)
class StoredIdentity:
    """A person appearance's faces, pooled: what groups are made of."""

    id: int
    group: int | None
    pooled: np.ndarray


def insert_faces(
    conn: Connection, video_id: int, frames: Sequence[SampledFrame], frame_ids: np.ndarray, faces: list[FoundFace]
) -> None:
    """One video's faces and their identities, inside the transaction that stores the video."""
    if not faces:
        return
    tracks = dict(
        conn.execute(
            select(appearances_t.c.track, appearances_t.c.id).where(appearances_t.c.video_id == video_id)
        ).all()
    )
    by_identity: dict[int, list[FoundFace]] = {}
    for face in faces:
        by_identity.setdefault(face.identity, []).append(face)
    for members in by_identity.values():
        times = [frames[face.frame_position].t for face in members]
        identity_id = conn.execute(
            face_identities_t.insert().values(
                video_id=video_id, appearance_id=tracks.get(members[0].track), start=min(times), end=max(times),
                pooled=np.mean([face.descriptor for face in members], axis=0).astype(np.float32).tobytes(),
            )
        ).inserted_primary_key[0]
        face_ids = [
            conn.execute(
                faces_t.insert().values(
                    identity_id=identity_id, frame_id=int(frame_ids[face.frame_position]), score=face.score,
                    x1=face.box.x1, y1=face.box.y1, x2=face.box.x2, y2=face.box.y2,
                    descriptor=face.descriptor.astype(np.float32).tobytes(),
                )
            ).inserted_primary_key[0]
            for face in members
        ]
        best = max(range(len(members)), key=lambda i: members[i].box.width * members[i].box.height)
        conn.execute(
            update(face_identities_t).where(face_identities_t.c.id == identity_id).values(best_face_id=face_ids[best])
        )


def _storable(number: int) -> bool:
    """Whether SQLite can hold the number (64-bit); a larger one, as a request may carry, names nothing."""
    return -(2**63) <= int(number) < 2**63


def _stored_face(row) -> StoredFace:
    row = row._mapping  # Row.t is SQLAlchemy's typed-tuple accessor, not the column t
    origin = (
        VideoOrigin(row["camera"], row["clock_start"], row["time_source"] or "none", row["clock_zone"] or "UTC")
        if row["camera"] is not None else None
    )
    return StoredFace(
        id=row["id"], video=Path(row["path"]), frame_index=row["frame_index"], t=row["t"],
        box=Box(row["x1"], row["y1"], row["x2"], row["y2"]), score=row["score"], identity=row["identity_id"],
        span=(row["start"], row["end"]), appearance=row["appearance_id"], group=row["group_id"], name=row["name"],
        origin=origin,
    )


_FACE_COLUMNS = (
    faces_t.c.id, faces_t.c.identity_id, faces_t.c.score, faces_t.c.x1, faces_t.c.y1, faces_t.c.x2, faces_t.c.y2,
    frames_t.c.frame_index, frames_t.c.t, videos_t.c.path, videos_t.c.camera, videos_t.c.clock_start,
    videos_t.c.time_source, videos_t.c.clock_zone, face_identities_t.c.start, face_identities_t.c.end,
    face_identities_t.c.appearance_id, face_identities_t.c.group_id, face_groups_t.c.name,
)


def _faces_query():
    return (
        select(*_FACE_COLUMNS)
        .select_from(faces_t)
        .join(frames_t, frames_t.c.id == faces_t.c.frame_id)
        .join(videos_t, videos_t.c.id == frames_t.c.video_id)
        .join(face_identities_t, face_identities_t.c.id == faces_t.c.identity_id)
        .outerjoin(face_groups_t, face_groups_t.c.id == face_identities_t.c.group_id)
    )


class FaceCatalog:
    """The face tables of one catalog (its engine)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def version(self) -> tuple[int, int]:
        """Changes whenever a face is added or deleted (face ids are never reused): the face index's key."""
        with self.engine.connect() as conn:
            count, largest = conn.execute(select(func.count(), func.coalesce(func.max(faces_t.c.id), 0))).one()
        return int(count), int(largest)

    def descriptors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every face's id and descriptor, for the face index."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(faces_t.c.id, faces_t.c.descriptor).order_by(faces_t.c.id)).all()
        ids = np.array([row.id for row in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(row.descriptor, np.float32) for row in rows]) if rows else None
        return ids, vectors

    def descriptor(self, face_id: int) -> np.ndarray | None:
        if not _storable(face_id):
            return None
        with self.engine.connect() as conn:
            raw = conn.scalar(select(faces_t.c.descriptor).where(faces_t.c.id == face_id))
        return np.frombuffer(raw, np.float32) if raw is not None else None

    def faces(self, face_ids: Iterable[int]) -> dict[int, StoredFace]:
        wanted = [int(i) for i in face_ids if _storable(i)]
        with self.engine.connect() as conn:
            rows = conn.execute(_faces_query().where(faces_t.c.id.in_(wanted))).all() if wanted else []
        return {row._mapping["id"]: _stored_face(row) for row in rows}

    def grouped_faces(self) -> list[StoredFace]:
        """Every face that belongs to a group, in video and time order."""
        query = _faces_query().where(face_identities_t.c.group_id.is_not(None))
        with self.engine.connect() as conn:
            return [_stored_face(row) for row in conn.execute(query.order_by(videos_t.c.path, frames_t.c.t))]

    def identities(self) -> list[StoredIdentity]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(face_identities_t.c.id, face_identities_t.c.group_id, face_identities_t.c.pooled)
                .order_by(face_identities_t.c.id)
            ).all()
        return [StoredIdentity(row.id, row.group_id, np.frombuffer(row.pooled, np.float32)) for row in rows]

    def best_faces(self, identity_ids: Iterable[int]) -> dict[int, int]:
        """Each identity's clearest face id."""
        wanted = list(identity_ids)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(face_identities_t.c.id, face_identities_t.c.best_face_id)
                .where(face_identities_t.c.id.in_(wanted))
            ).all() if wanted else []
        return {row.id: row.best_face_id for row in rows}

    def assign(self, groups: Mapping[int, int], new: Sequence[Sequence[int]]) -> None:
        """Put identities into existing groups (`groups`: identity -> group) and each list of `new` into a group of
        its own, in one transaction."""
        with self.engine.begin() as conn:
            for identity_id, group_id in groups.items():
                conn.execute(
                    update(face_identities_t).where(face_identities_t.c.id == identity_id).values(group_id=group_id)
                )
            for members in new:
                group_id = conn.execute(face_groups_t.insert().values(name=None)).inserted_primary_key[0]
                conn.execute(
                    update(face_identities_t).where(face_identities_t.c.id.in_(list(members))).values(group_id=group_id)
                )

    def groups(self) -> dict[int, str | None]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(face_groups_t.c.id, face_groups_t.c.name).order_by(face_groups_t.c.id)).all())

    def name(self, group_id: int, name: str) -> bool:
        """Name a group; False when there is no such group."""
        if not _storable(group_id):
            return False
        with self.engine.begin() as conn:
            return conn.execute(
                update(face_groups_t).where(face_groups_t.c.id == group_id).values(name=name)
            ).rowcount == 1

    def groups_named(self, name: str) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.scalars(select(face_groups_t.c.id).where(face_groups_t.c.name == name)))

    def forget(self, group_ids: Sequence[int] | None) -> list[int]:
        """Delete the faces, identities, groups and names of `group_ids` (every face without), then rewrite the
        file so no deleted descriptor stays in its free pages or its write-ahead log; returns the face ids deleted."""
        with self.engine.begin() as conn:
            identities = select(face_identities_t.c.id)
            if group_ids is not None:
                identities = identities.where(face_identities_t.c.group_id.in_(list(group_ids)))
            face_ids = list(conn.scalars(select(faces_t.c.id).where(faces_t.c.identity_id.in_(identities))))
            conn.execute(delete(face_identities_t).where(face_identities_t.c.id.in_(identities)))  # faces cascade
            groups = delete(face_groups_t)
            conn.execute(groups if group_ids is None else groups.where(face_groups_t.c.id.in_(list(group_ids))))
        with self.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return face_ids

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "faces": int(conn.scalar(select(func.count()).select_from(faces_t))),
                "identities": int(conn.scalar(select(func.count()).select_from(face_identities_t))),
                "groups": int(conn.scalar(select(func.count()).select_from(face_groups_t))),
                "named": int(conn.scalar(select(func.count()).select_from(face_groups_t).where(
                    face_groups_t.c.name.is_not(None)))),
            }
