"""Faces across the archive: search by a picture's face, by an indexed face, or by a person's name; the people that
grouping makes of identities, their names; and forgetting face data for good (rows, vectors, thumbnails).

The face index (face.faiss, exact L2 over every face descriptor) is derived from the catalog, which holds the
descriptors: it is rebuilt whenever the catalog's faces changed since it was written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import ConfigError, NotFoundError
from ..faces.grouping import regroup
from ..faces.records import FaceGroup, FaceHit, StoredFace
from ..records import Box
from ..store import Catalog
from ..store.faces import FaceCatalog
from .models import Models
from .writes import WriteGuard

_THUMB_MARGIN = 0.3  # share of a face's box added on each side of its thumbnail


class Faces:
    def __init__(self, settings: Settings, catalog: Catalog, models: Models, writes: WriteGuard):
        self.settings = settings
        self.config = settings.faces
        self.folder = settings.archive
        self.store = FaceCatalog(catalog.engine)
        self.models = models
        self.writes = writes
        self._index = None
        self._index_version: tuple[int, int] | None = None

    # --- search ---------------------------------------------------------------------------------------

    def search_picture(self, path: Path, box: Box | None = None, k: int = 20) -> list[FaceHit]:
        """Appearances showing the picture's largest face (or the face in `box`), closest first."""
        from ..thumbnails import read_picture

        image = read_picture(path)
        model = self.models.face_model()
        if box is None:
            found = model.detector.find(image, self.config.frame_upsample) or model.detector.find(
                image, self.config.frame_upsample + 1
            )
            if not found:
                raise NotFoundError(f"{path}: no face found in the picture (give its box with --face-box)")
            box = max(found, key=lambda face: face.box.width * face.box.height).box
        return self.search_vector(model.descriptor.describe(image, [box])[0], k)

    def like(self, face_id: int, k: int = 20) -> list[FaceHit]:
        """Where else the person of an indexed face appears: its own appearance left out."""
        vector = self.store.descriptor(face_id)
        if vector is None:
            raise NotFoundError(f"no face with id {face_id}")
        own = self.store.faces([face_id])[face_id].identity
        return self.search_vector(vector, k, leave_out=own)

    def search_vector(self, vector: np.ndarray, k: int = 20, leave_out: int | None = None) -> list[FaceHit]:
        """Every identity with a face within the model's threshold of `vector`, at its closest face, closest first."""
        index = self.index()
        if index is None:
            return []
        limits, squared, ids = index.range_search(vector.reshape(1, -1).astype(np.float32), self.config.threshold**2)
        closest: dict[int, tuple[float, int]] = {}
        faces = self.store.faces(ids[limits[0]:limits[1]].tolist())
        for face_id, distance in zip(ids[limits[0]:limits[1]], np.sqrt(np.maximum(squared[limits[0]:limits[1]], 0))):
            face = faces.get(int(face_id))
            if face is None or face.identity == leave_out:
                continue
            if face.identity not in closest or distance < closest[face.identity][0]:
                closest[face.identity] = (float(distance), face.id)
        ranked = sorted(closest.values())[:k]
        return [FaceHit(rank, distance, faces[face_id]) for rank, (distance, face_id) in enumerate(ranked, start=1)]

    def who(self, name: str, k: int = 20) -> list[FaceHit]:
        """The appearances of the person named `name`, each at its clearest face, nearest the person's mean first."""
        groups = self.store.groups_named(name)
        if not groups:
            raise NotFoundError(f"no person is named {name!r} (name one with `vidsearch faces name GROUP NAME`)")
        return self.members(groups, k)

    def members(self, groups: Sequence[int], k: int = 20) -> list[FaceHit]:
        """The appearances of some groups, each at its clearest face, nearest the groups' mean first."""
        members = [identity for identity in self.store.identities() if identity.group in groups]
        if not members:
            raise NotFoundError(f"no face group {', '.join(map(str, groups))} (`vidsearch faces` lists them)")
        centre = np.mean([identity.pooled for identity in members], axis=0)
        best = self.store.best_faces(identity.id for identity in members)
        faces = self.store.faces(best.values())
        ranked = sorted((float(np.linalg.norm(i.pooled - centre)), best[i.id]) for i in members)[:k]
        return [FaceHit(rank, distance, faces[face_id]) for rank, (distance, face_id) in enumerate(ranked, start=1)]

    def index(self):
        """The face index, rebuilt from the catalog's descriptors when they changed; None without faces."""
        import faiss

        version = self.store.version()
        if self._index_version == version:
            return self._index
        path, meta = self.folder / "face.faiss", self.folder / "face.json"
        saved = json.loads(meta.read_text()) if meta.exists() and path.exists() else None
        if version[0] == 0:
            self._index = None
            _remove(path, meta)
        elif saved is not None and tuple(saved["version"]) == version:
            self._index = faiss.read_index(str(path))
        else:
            ids, vectors = self.store.descriptors()
            index = faiss.IndexIDMap2(faiss.IndexFlatL2(vectors.shape[1]))
            index.add_with_ids(vectors, ids)
            with self.writes.writing("saving the face index"):
                _write_atomically(path, lambda target: faiss.write_index(index, str(target)))
                _write_atomically(meta, lambda target: target.write_text(json.dumps({"version": list(version)})))
            self._index = index
        self._index_version = version
        return self._index

    # --- people ---------------------------------------------------------------------------------------

    def groups(self) -> list[FaceGroup]:
        """Every person found, after new identities joined their groups or formed new ones; largest first."""
        grouping = regroup(self.store.identities(), self.config.group_threshold)
        if grouping.joined or grouping.new:
            with self.writes.writing("grouping faces"):
                self.store.assign(grouping.joined, grouping.new)
        names = self.store.groups()
        faces: dict[int, list[StoredFace]] = {}
        for face in self.store.grouped_faces():
            faces.setdefault(face.group, []).append(face)
        people = [_group(group, names.get(group), members) for group, members in faces.items()]
        return sorted(people, key=lambda person: (-person.size, person.id))

    def name(self, group: int, name: str) -> None:
        if not name.strip():
            raise ConfigError("a person's name must not be empty")
        with self.writes.writing(f"naming face group {group}"):
            if not self.store.name(group, name.strip()):
                raise NotFoundError(f"no face group {group} (`vidsearch faces` lists them)")

    def forget(self, groups: Sequence[int] | None) -> int:
        """Delete the face data of `groups` (all of it with None) for good; returns how many faces were deleted."""
        if groups is not None:
            unknown = sorted(set(groups) - set(self.store.groups()))
            if unknown:
                raise NotFoundError(f"no face group {', '.join(map(str, unknown))} (`vidsearch faces` lists them)")
        with self.writes.writer(), self.writes.writing("forgetting faces"):
            deleted = self.store.forget(groups)
            for face_id in deleted:
                _remove(self._thumbnail_path(face_id))
            self._index_version = None
            self.index()
        return len(deleted)

    def thumbnail(self, face_id: int) -> Path:
        """A small JPG of a face, made on first call and kept in thumbs/ until its face is forgotten."""
        from ..thumbnails import grab_frame, save_jpeg, thumbnail

        path = self._thumbnail_path(face_id)
        if not path.exists():
            face = self.store.faces([face_id]).get(face_id)
            if face is None:
                raise NotFoundError(f"no face with id {face_id}")
            image = grab_frame(face.video, face.t)
            box, margin = face.box, _THUMB_MARGIN * max(face.box.width, face.box.height)
            height, width = image.shape[:2]
            x1, y1 = max(0, int(box.x1 - margin)), max(0, int(box.y1 - margin))
            x2, y2 = min(width, int(box.x2 + margin)), min(height, int(box.y2 + margin))
            save_jpeg(thumbnail(image[y1:y2, x1:x2]), path, quality=85)
        return path

    def _thumbnail_path(self, face_id: int) -> Path:
        return self.folder / "thumbs" / f"face-{face_id}.jpg"


def _group(group: int, name: str | None, faces: list[StoredFace]) -> FaceGroup:
    def when(face: StoredFace) -> tuple:
        start = face.origin.start if face.origin else None
        return (start is None, (start or 0.0) + face.t, str(face.video), face.t)

    ordered = sorted(faces, key=when)
    return FaceGroup(
        id=group, name=name, size=len(faces), appearances=len({face.identity for face in faces}),
        videos=tuple(sorted({face.video for face in faces})),
        cameras=tuple(sorted({face.origin.camera for face in faces if face.origin})),
        first=ordered[0], last=ordered[-1],
        best_face=max(faces, key=lambda face: face.box.width * face.box.height).id,
    )


def _write_atomically(path: Path, write) -> None:
    partial = path.with_name(path.name + ".part")
    write(partial)
    os.replace(partial, path)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
