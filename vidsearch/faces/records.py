"""Faces as the catalog keeps them, as face search ranks them, and as face grouping gathers them into people."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..clock import iso
from ..records import Box, VideoOrigin


@dataclass(frozen=True, slots=True)
class StoredFace:
    """A face as the catalog keeps it, with the identity (person appearance) and group (person) it belongs to."""

    id: int
    video: Path
    frame_index: int
    t: float
    box: Box
    score: float
    identity: int
    span: tuple[float, float]  # its identity's first and last face in the video
    appearance: int | None  # the person appearance it was found in
    group: int | None
    name: str | None
    origin: VideoOrigin | None


@dataclass(frozen=True, slots=True)
class FaceHit:
    """One ranked face search result: an identity (a person appearance's faces), shown at its closest face."""

    rank: int
    distance: float  # descriptor distance to the query face: smaller is closer
    face: StoredFace

    def to_json(self) -> dict:
        face, origin = self.face, self.face.origin
        return {
            "rank": self.rank, "kind": "face", "distance": round(self.distance, 4), "video": str(face.video),
            "camera": origin.camera if origin else None, "t": round(face.t, 3),
            "time": iso(origin.clock_time(face.t)) if origin else None,
            "start": round(face.span[0], 3), "end": round(face.span[1], 3),
            "box": [round(v, 1) for v in face.box.as_list()], "id": face.id, "frame_index": face.frame_index,
            "detector_score": round(face.score, 4), "identity": face.identity, "appearance": face.appearance,
            "group": face.group, "name": face.name,
        }


@dataclass(frozen=True, slots=True)
class FaceGroup:
    """A person as face clustering found them: their identities' count, where and when they were seen."""

    id: int
    name: str | None
    size: int  # faces
    appearances: int  # identities: person appearances with a face
    videos: tuple[Path, ...]
    cameras: tuple[str, ...]
    first: StoredFace  # the earliest face (clock time where known, else the first video's first face)
    last: StoredFace
    best_face: int  # the face id of its clearest face (largest box), for its thumbnail

    def to_json(self) -> dict:
        def seen(face: StoredFace) -> dict:
            time = face.origin.clock_time(face.t) if face.origin else None
            return {"video": str(face.video), "t": round(face.t, 3), "time": iso(time), "face": face.id}

        return {
            "group": self.id, "name": self.name, "size": self.size, "appearances": self.appearances,
            "videos": [str(v) for v in self.videos], "cameras": list(self.cameras),
            "first": seen(self.first), "last": seen(self.last), "best_face": self.best_face,
        }
