"""What Archive calls return: an ingest's totals, the archive's contents, an evaluation's figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .evaluate import SetReport
from .clock import iso
from .records import Item, ProcessedVideo, StageSeconds, StoredAppearance, VideoOrigin


@dataclass(slots=True)
class IngestReport:
    indexed: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    partial: list[PartialVideo] = field(default_factory=list)  # indexed up to where their files are cut short
    frames: int = 0  # kept frames, each with a vector
    frames_skipped: int = 0  # sampled frames that duplicated a kept one
    persons: int = 0  # person detections
    person_vectors: int = 0  # embedded crops: the best of each track per time window
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    seconds: StageSeconds = field(default_factory=StageSeconds)

    def add(self, path: Path, result: ProcessedVideo) -> None:
        self.indexed += 1
        if result.info.cut_short:
            self.partial.append(PartialVideo(path, result.info.duration, result.info.declared_duration))
        self.frames += len(result.frames)
        self.frames_skipped += result.frames_skipped
        self.persons += len(result.persons)
        self.person_vectors += len(result.person_vectors)
        self.video_seconds += result.info.duration
        self.seconds.add(result.seconds)

    def to_json(self) -> dict:
        return {
            "indexed": self.indexed, "unchanged": self.unchanged, "frames": self.frames,
            "frames_skipped": self.frames_skipped, "persons": self.persons, "person_vectors": self.person_vectors,
            "video_seconds": round(self.video_seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in asdict(self.seconds).items()},
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "partial": [video.to_json() for video in self.partial],
        }


@dataclass(frozen=True, slots=True)
class PartialVideo:
    """A video indexed up to where its file is cut short."""

    path: Path
    indexed_seconds: float
    declared_seconds: float  # what the file's header says

    def to_json(self) -> dict:
        return {
            "path": str(self.path), "indexed_seconds": round(self.indexed_seconds, 3),
            "declared_seconds": round(self.declared_seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    folder: Path
    videos: int
    frames: int
    persons: int
    appearances: int
    video_seconds: float
    failed: list[tuple[Path, str]]
    partial: list[PartialVideo]
    model: dict | None
    index: dict
    device: dict  # the --device setting, the device it picks and why
    cameras: list[dict] = field(default_factory=list)  # camera, videos, seconds, frame_vectors, person_vectors
    precision: dict | None = None  # the --precision setting and the archive's int8 check (vidsearch.precision)
    tracked: dict[str, int] = field(default_factory=dict)  # appearances per tracked class: person, car...
    faces: dict = field(default_factory=dict)  # faces, identities, groups, named: face data is biometric data

    def to_json(self) -> dict:
        return {
            "archive": str(self.folder), "videos": self.videos, "frames": self.frames, "persons": self.persons,
            "appearances": self.appearances, "tracked": self.tracked, "video_seconds": round(self.video_seconds, 3),
            "cameras": [
                {
                    "camera": c["camera"], "videos": c["videos"], "hours": round(c["seconds"] / 3600, 4),
                    "vectors": c["frame_vectors"] + c["person_vectors"],
                }
                for c in self.cameras
            ],
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "partial": [video.to_json() for video in self.partial],
            "model": self.model, "index": self.index, "device": self.device, "precision": self.precision,
            "faces": {"held": bool(self.faces.get("faces")), **self.faces},
        }


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    report: SetReport  # each query searched as its target says: persons, or frames and persons
    modes: dict[str, SetReport]  # every query against frames only, persons only, and both fused
    not_indexed: tuple[str, ...]  # videos the set names that this archive has not indexed under the root

    def to_json(self) -> dict:
        return {
            **self.report.to_json(), "not_indexed": list(self.not_indexed),
            "modes": {mode: report.to_json() for mode, report in self.modes.items()},
        }


@dataclass(frozen=True, slots=True)
class Description:
    """One hit as `vidsearch describe` shows it."""

    item: Item
    video: Path
    appearance: StoredAppearance | None  # for a tracked thing: the track it belongs to, with its attributes
    origin: VideoOrigin | None = None  # the video's camera and clock

    def to_json(self) -> dict:
        item = self.item
        origin = self.origin
        described = {
            "id": item.vector_id, "kind": item.kind, "video": str(self.video),
            "camera": origin.camera if origin else None, "t": round(item.t, 3),
            "time": iso(origin.clock_time(item.t)) if origin else None,
            "time_source": origin.time_source if origin else None,
            "frame_index": item.frame_index, "box": [round(v, 1) for v in item.box.as_list()] if item.box else None,
            "detector_score": round(item.detector_score, 4) if item.detector_score is not None else None,
            "label": item.label,
        }
        if self.appearance is not None:
            a = self.appearance
            described["appearance"] = {
                "id": a.id, "label": a.label, "start": round(a.start, 3), "end": round(a.end, 3),
                "detections": a.detections, "best_id": a.best_person_id,
                "attributes": {
                    group: dict(sorted(((label, round(p, 4)) for label, p in labels.items()), key=lambda lp: -lp[1]))
                    for group, labels in a.attributes.items()
                },
            }
        return described


@dataclass(frozen=True, slots=True)
class IndexReport:
    """One index as `vidsearch index info` shows it."""

    vectors: str  # "frame" or "person"
    info: object  # vidsearch.index.IndexInfo
    reason: str  # why this kind of index
    recall_at_10: float | None  # against exact search, measured when the index was built; 1.0 for exact
    recall_queries: int

    def to_json(self) -> dict:
        info = self.info
        return {
            "vectors": self.vectors, "index": info.kind, "factory": info.factory, "count": info.vectors,
            "bytes_per_vector": info.bytes_per_vector, "rerank_bytes_on_disk": info.rerank_bytes,
            "recall@10": None if self.recall_at_10 is None else round(self.recall_at_10, 4),
            "recall_queries": self.recall_queries, "build_seconds": info.build_seconds,
            "nprobe": info.nprobe, "rerank_factor": info.rerank_factor, "reason": self.reason,
        }
