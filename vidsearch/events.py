"""What ingest reports while it runs; the caller decides how to show it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class IngestPlanned:
    videos: int  # files found by the scan, before deciding which are unchanged


@dataclass(frozen=True, slots=True)
class FramesDone:
    path: Path
    count: int


@dataclass(frozen=True, slots=True)
class VideoIndexed:
    path: Path
    frames: int
    persons: int
    video_seconds: float


@dataclass(frozen=True, slots=True)
class VideoCutShort:
    """A video indexed only up to where its file ends, before the end its header declares (sent before VideoIndexed)."""

    path: Path
    indexed_seconds: float
    declared_seconds: float


@dataclass(frozen=True, slots=True)
class VideoNotHeard:
    """A video indexed for its pictures whose sound could not be transcribed (sent before VideoIndexed)."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class VideoSkipped:
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class VideoFailed:
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class NoOverlayClock:
    """A video's clock time was asked of its picture (--time-from overlay) and could not be read there."""

    path: Path
    reason: str


IngestEvent = (
    IngestPlanned | FramesDone | VideoCutShort | VideoNotHeard | VideoIndexed | VideoSkipped | VideoFailed
    | NoOverlayClock
)
