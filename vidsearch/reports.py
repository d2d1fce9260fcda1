"""What Archive calls return: an ingest's totals, the archive's contents, an evaluation's figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .evaluate import SetReport
from .pipeline import ProcessedVideo, StageSeconds


@dataclass(slots=True)
class IngestReport:
    indexed: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    frames: int = 0  # kept frames, each with a vector
    frames_skipped: int = 0  # sampled frames that duplicated a kept one
    persons: int = 0  # person detections
    person_vectors: int = 0  # embedded crops: the best of each track per time window
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    seconds: StageSeconds = field(default_factory=StageSeconds)

    def add(self, result: ProcessedVideo) -> None:
        self.indexed += 1
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
        }


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    folder: Path
    videos: int
    frames: int
    persons: int
    video_seconds: float
    failed: list[tuple[Path, str]]
    model: dict | None
    index: dict

    def to_json(self) -> dict:
        return {
            "archive": str(self.folder), "videos": self.videos, "frames": self.frames, "persons": self.persons,
            "video_seconds": round(self.video_seconds, 3),
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "model": self.model, "index": self.index,
        }


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    report: SetReport
    not_indexed: tuple[str, ...]  # videos the set names that this archive has not indexed under the root

    def to_json(self) -> dict:
        return {**self.report.to_json(), "not_indexed": list(self.not_indexed)}
