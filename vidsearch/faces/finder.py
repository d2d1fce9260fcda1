"""Finding faces in a video's kept frames and grouping them into identities, one per person appearance.

Faces are looked for in the upper half of each person's box first (one face per person: the largest), so a
small face in a large frame is searched at the person's scale, and in the whole frame only where the detector
found no person. A face found in a person's box takes that person's track as its identity; a face in a frame
without persons joins the nearest identity of the video within the model's threshold, or starts one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import FaceConfig
from ..records import Box, FoundFace, Frame
from .models import FaceModel, FoundBox

_HEAD_SHARE = 0.5  # the share of a person's box, from its top, where the face is looked for
_SAME_FACE_IOU = 0.5  # two found boxes overlapping more than this are one face (overlapping persons)


@dataclass(frozen=True, slots=True)
class PersonBox:
    """A tracked person in a frame, as the finder needs them."""

    box: Box
    track: int


@dataclass(frozen=True, slots=True, eq=False)
class _Face:
    frame_position: int
    found: FoundBox
    track: int
    descriptor: np.ndarray


class VideoFaces:
    """The faces of one video, frame by frame; `result` groups them into identities."""

    def __init__(self, model: FaceModel, config: FaceConfig):
        self.model = model
        self.config = config
        self.faces: list[_Face] = []

    def add(self, position: int, frame: Frame, persons: list[PersonBox]) -> None:
        found = self._in_persons(frame.image, persons) if persons else [
            (face, -1) for face in self.model.detector.find(frame.image, self.config.frame_upsample)
        ]
        found = [(face, track) for face, track in found if self._big_enough(face.box)]
        if not found:
            return  # no face: the descriptor model is never asked
        vectors = self.model.descriptor.describe(frame.image, [face.box for face, _ in found])
        self.faces.extend(
            _Face(position, face, track, vector) for (face, track), vector in zip(found, vectors)
        )

    def _in_persons(self, image: np.ndarray, persons: list[PersonBox]) -> list[tuple[FoundBox, int]]:
        height, width = image.shape[:2]
        kept: list[tuple[FoundBox, int]] = []
        for person in persons:
            box = person.box
            x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
            x2, y2 = min(width, int(np.ceil(box.x2))), min(height, int(np.ceil(box.y1 + _HEAD_SHARE * box.height)))
            if x2 - x1 < self.config.min_size or y2 - y1 < self.config.min_size:
                continue
            faces = self.model.detector.find(np.ascontiguousarray(image[y1:y2, x1:x2]), self.config.person_upsample)
            if not faces:
                continue
            largest = max(faces, key=lambda face: face.box.width * face.box.height)
            moved = FoundBox(
                Box(largest.box.x1 + x1, largest.box.y1 + y1, largest.box.x2 + x1, largest.box.y2 + y1), largest.score
            )
            if all(moved.box.iou(other.box) <= _SAME_FACE_IOU for other, _ in kept):
                kept.append((moved, person.track))
        return kept

    def _big_enough(self, box: Box) -> bool:
        return min(box.width, box.height) >= self.config.min_size

    def result(self) -> list[FoundFace]:
        """Every face with its identity: a person track's faces share one; the others join the nearest."""
        identities: dict[object, int] = {}
        members: list[list[np.ndarray]] = []

        def identity(key: object) -> int:
            if key not in identities:
                identities[key] = len(members)
                members.append([])
            return identities[key]

        numbered = []
        for face in self.faces:
            if face.track >= 0:
                number = identity(("track", face.track))
            else:
                number = self._nearest(face.descriptor, members)
                if number is None:
                    number = identity(("face", len(numbered)))
            members[number].append(face.descriptor)
            numbered.append(number)
        return [
            FoundFace(
                frame_position=face.frame_position, box=face.found.box, score=face.found.score, track=face.track,
                identity=number, descriptor=face.descriptor,
            )
            for face, number in zip(self.faces, numbered)
        ]

    def _nearest(self, descriptor: np.ndarray, members: list[list[np.ndarray]]) -> int | None:
        if not members:
            return None
        distances = [float(np.linalg.norm(np.mean(group, axis=0) - descriptor)) for group in members]
        best = int(np.argmin(distances))
        return best if distances[best] <= self.config.threshold else None
