"""Records passed between modules: small and typed, so no module needs another's internals to read what it is
handed. What was said and the catalog's faces have theirs beside them (speech/records.py, faces/records.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np

from .clock import in_zone, iso
from .speech.records import SpeechMatch, SpeechSegment

Kind = Literal["frame", "person"]


@dataclass(frozen=True, slots=True)
class VideoFile:
    """A file found by the scan, before anything is decoded."""

    path: Path  # absolute
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class VideoOrigin:
    """Where and when a video was recorded: its camera, and its start on the clock where it is known."""

    camera: str
    start: float | None  # UTC seconds since the epoch
    time_source: str  # "name", "metadata", "mtime", "overlay" or "none"
    zone: str  # the IANA zone its clock times are shown in

    def clock_time(self, t: float) -> datetime | None:
        """The wall-clock moment `t` seconds into the video, in the video's zone; None without a start."""
        if self.start is None:
            return None
        return in_zone(datetime.fromtimestamp(self.start + t, timezone.utc), self.zone)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the decoder learned about a video's stream."""

    duration: float  # seconds, from the decoded timeline
    fps: float  # average frame rate
    width: int
    height: int
    frame_count: int
    timeline: Literal["pts", "frame-index"]  # where timestamps come from
    # seconds the file's header says the stream lasts; more than `duration` when the file is cut short
    declared_duration: float | None = None

    @property
    def cut_short(self) -> bool:
        return is_cut_short(self.duration, self.declared_duration)


# a file whose frames end this much before its header says they do is cut short; less is the usual disagreement
# of headers with timelines (5 s of 180 in cctv_night_ir_hevc.mp4, 0.2 s of 23 in rknn_dance-street.mp4)
_CUT_SHORT_S = 1.0
_CUT_SHORT_SHARE = 0.05


def is_cut_short(duration: float | None, declared_duration: float | None) -> bool:
    """Whether the frames (`duration` seconds) end well before the `declared_duration` of the file's header."""
    if duration is None or declared_duration is None:
        return False
    missing = declared_duration - duration
    return missing > _CUT_SHORT_S and missing > _CUT_SHORT_SHARE * declared_duration


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One sampled frame and its true presentation time."""

    index: int  # position in the decoded stream
    t: float  # presentation timestamp in seconds
    image: np.ndarray  # H x W x 3, uint8, RGB


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in source-frame pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    def iou(self, other: Box) -> float:
        iw = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        ih = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = iw * ih
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected object in one frame."""

    box: Box
    score: float
    label: str


@dataclass(frozen=True, slots=True, eq=False)
class Crop:
    """The pixels of one detection, cut from its frame with a margin."""

    frame: Frame
    detection: Detection
    image: np.ndarray  # h x w x 3, uint8, RGB


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """A frame as the catalog keeps it, without pixels."""

    frame_index: int
    t: float


@dataclass(frozen=True, slots=True)
class FoundPerson:
    frame_position: int  # position of its frame in the video's list of kept frames
    detection: Detection
    track: int  # the same person across sampled frames of one video
    embedded: bool  # whether its crop was embedded (the best of its track in a time window)


@dataclass(frozen=True, slots=True)
class FoundObject:
    """A detection of another class than the tracked ones (a car, a bag...): kept to filter frames by."""

    frame_position: int
    detection: Detection


@dataclass(frozen=True, slots=True)
class TextReading:
    """A line of text read in one frame: its box in frame pixels, the string and the reader's confidence; `within`
    is the detection (a vehicle) whose box it was read inside, None for text read in the whole frame."""

    box: Box
    text: str
    confidence: float
    within: Detection | None = None

    def to_json(self) -> dict:
        within = self.within
        return {
            "text": self.text, "confidence": round(self.confidence, 4),
            "box": [round(v, 1) for v in self.box.as_list()],
            "within": None if within is None else {
                "label": within.label, "box": [round(v, 1) for v in within.box.as_list()],
                "score": round(within.score, 4),
            },
        }


@dataclass(frozen=True, slots=True)
class ScreenText:
    """One text seen on screen over a span of consecutive kept frames, kept once: the reading of best confidence
    (`best`, at its frame) stands for all of them."""

    frame_position: int  # the kept frame of the best reading
    start: float  # seconds: first and last kept frame the text was read in
    end: float
    frames: int  # kept frames it was read in
    best: TextReading


@dataclass(frozen=True, slots=True)
class StoredScreenText:
    """A text span as the catalog keeps it: its video, the frame of its best reading (a frame vector's id), its span,
    its folded form and the reading."""

    id: int
    video_id: int
    video: Path
    frame_id: int
    frame_index: int
    t: float
    start: float
    end: float
    frames: int  # kept frames it was read in
    folded: str
    reading: TextReading
    appearance: int | None = None  # the tracked vehicle's appearance it was read inside, if any


@dataclass(frozen=True, slots=True, eq=False)
class FoundFace:
    """A face in a kept frame: where it is, how sure the face detector was, its descriptor, and the identity it was
    grouped into within its video (the person track it was found in, else faces close in descriptor space)."""

    frame_position: int
    box: Box
    score: float
    track: int  # the person track whose box it was found in; -1 when found in a frame without persons
    identity: int  # within the video: faces of one person appearance share it
    descriptor: np.ndarray  # float32, the face model's vector


@dataclass(frozen=True, slots=True, eq=False)
class Appearance:
    """One tracked thing's track through a video (a person, a car...), summarized: its class, span, best crop,
    pooled embedding and the direction it travelled."""

    track: int
    start: float  # seconds: first and last sampled frame the person is seen in
    end: float
    detections: int
    best: int  # position, in the video's list of persons, of the embedded crop with the best view
    pooled: np.ndarray  # mean of the track's crop vectors, normalized
    attributes: dict[str, dict[str, float]] = field(default_factory=dict)  # group -> label -> probability
    label: str = "person"  # the class most of its detections were given
    direction: str | None = None  # left, right, towards, away or still, from its boxes (TRAVEL_DIRECTIONS)


@dataclass(frozen=True, slots=True)
class AttributeMatch:
    """How strongly a person shows an attribute that the query mentions, and what the group's best label is."""

    group: str
    label: str
    probability: float
    best_label: str
    best_probability: float

    def to_json(self) -> dict:
        return {
            "group": self.group, "label": self.label, "probability": round(self.probability, 4),
            "best": self.best_label, "best_probability": round(self.best_probability, 4),
        }


@dataclass(frozen=True, slots=True)
class Item:
    """One indexed vector's meaning: a whole frame, or a person in a frame."""

    vector_id: int
    kind: Kind
    frame_index: int
    t: float
    box: Box | None = None
    detector_score: float | None = None
    label: str | None = None  # a crop's detector class (person, car...); None for whole frames


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked search result."""

    rank: int
    score: float
    item: Item
    video: Path
    span: tuple[float, float] | None = None  # an appearance's or a moment's start and end; item is its best moment
    appearance: int | None = None  # the appearance a person hit belongs to
    evidence: tuple[AttributeMatch, ...] = ()  # the query's attributes, as this person shows them
    camera: str | None = None
    time: datetime | None = None  # the wall-clock moment of item.t, where the video's start is known
    screen_text: TextReading | None = None  # the text on screen this hit was found by
    said: tuple[SpeechMatch, ...] = ()  # words spoken near it that a `said` query asked for

    def to_json(self) -> dict:
        extra: dict = {}
        if self.said:
            extra["said"] = [match.to_json() for match in self.said]
        if self.span is not None:
            extra["start"], extra["end"] = round(self.span[0], 3), round(self.span[1], 3)
        if self.appearance is not None:
            extra["appearance"] = self.appearance
        if self.evidence:
            extra["attributes"] = [match.to_json() for match in self.evidence]
        if self.screen_text is not None:
            extra["screen_text"] = self.screen_text.to_json()
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "kind": self.item.kind,
            "video": str(self.video),
            "camera": self.camera,
            "t": round(self.item.t, 3),
            "time": iso(self.time),
            "box": [round(v, 1) for v in self.item.box.as_list()] if self.item.box else None,
            "id": self.item.vector_id,
            "frame_index": self.item.frame_index,
            "detector_score": (
                round(self.item.detector_score, 4) if self.item.detector_score is not None else None
            ),
            "label": self.item.label,
            **extra,
        }


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """What makes two sets of vectors comparable: the architecture and the exact weights."""

    model: str
    weights: str  # "sha256:<hex>" of a local file, or "open_clip:<tag>" for a published tag
    dim: int

    def describe(self) -> str:
        return f"{self.model} ({self.weights}, {self.dim}-d)"


@dataclass(frozen=True, slots=True)
class StoredModel:
    """The embedding model an archive's vectors come from, as its catalog records it: the options that load it
    again (`model`, `pretrained`) and the identity of the weights they loaded."""

    model: str
    pretrained: str | None
    identity: ModelIdentity

    @property
    def key(self) -> str:
        """How settings name this model (calibrated thresholds): "ViT-B-32/laion2b_s34b_b79k"."""
        return f"{self.model}/{self.pretrained}"

    def to_json(self) -> dict:
        return {"model": self.model, "pretrained": self.pretrained, "identity": asdict(self.identity)}

    @classmethod
    def from_json(cls, saved: dict) -> StoredModel:
        return cls(saved["model"], saved["pretrained"], ModelIdentity(**saved["identity"]))


@dataclass(slots=True)
class StageSeconds:
    """Time spent in each stage, accumulated over batches (decode: the wait for the decoder process)."""

    decode: float = 0.0
    detect: float = 0.0
    embed: float = 0.0
    write: float = 0.0
    read: float = 0.0  # text on screen
    faces: float = 0.0
    transcribe: float = 0.0  # in its own thread, beside the others

    def add(self, other: StageSeconds) -> None:
        self.decode += other.decode
        self.detect += other.detect
        self.embed += other.embed
        self.write += other.write
        self.read += other.read
        self.faces += other.faces
        self.transcribe += other.transcribe


@dataclass(frozen=True, slots=True, eq=False)
class ProcessedVideo:
    """Everything one video contributes to the archive, without pixels: what the pipeline yields, and what the
    catalog and the shards store."""

    info: VideoInfo
    reader: str  # the library that decoded it
    sample_fps: float  # frames sampled per second of video
    frames: list[SampledFrame]  # kept frames, each with a vector in frame_vectors
    frames_skipped: int  # sampled frames dropped as duplicates of the last kept one
    persons: list[FoundPerson]  # every detection; those marked embedded have a vector in person_vectors
    objects: list[FoundObject]  # detections of the detector's other classes (cars, bags...), without vectors
    appearances: list[Appearance]  # the persons' tracks, summarized, with their attribute probabilities
    frame_vectors: np.ndarray
    person_vectors: np.ndarray  # in the order of the embedded persons
    seconds: StageSeconds = field(default_factory=StageSeconds)
    texts: list[ScreenText] = field(default_factory=list)  # text read on screen, where ingest reads it
    faces: list[FoundFace] = field(default_factory=list)  # only where ingest was asked to find faces
    speech: tuple[SpeechSegment, ...] = ()  # what was said, where the video has sound and speech was transcribed
    audio_problem: str | None = None  # why its sound could not be transcribed; its pictures are indexed all the same

    @property
    def embedded_persons(self) -> np.ndarray:
        """Which of `persons` have a vector, as a boolean mask."""
        return np.array([p.embedded for p in self.persons], dtype=bool)

    def crop_items(self, person_ids: np.ndarray) -> list[Item]:
        """What the embedded crops' vectors mean, in the order of `person_vectors`, given every person's id."""
        return [
            Item(
                vector_id=int(i), kind="person", frame_index=self.frames[p.frame_position].frame_index,
                t=self.frames[p.frame_position].t, box=p.detection.box, detector_score=p.detection.score,
            )
            for i, p in zip(person_ids[self.embedded_persons], (p for p in self.persons if p.embedded))
        ]


@dataclass(frozen=True, slots=True)
class CatalogVideo:
    """A video as the catalog lists it."""

    id: int
    path: Path
    size: int
    mtime_ns: int
    fingerprint: str | None
    status: str  # "indexed" or "failed"
    error: str | None
    frames_skipped: int
    duration: float | None = None  # seconds of frames indexed
    declared_duration: float | None = None  # seconds the file's header says it lasts (None before revision 0004)
    origin: VideoOrigin | None = None  # None for a video that failed
    sample_fps: float | None = None  # frames it was sampled at per second
    reader: str | None = None  # the library that decoded it

    @property
    def cut_short(self) -> bool:
        return is_cut_short(self.duration, self.declared_duration)


@dataclass(frozen=True, slots=True)
class StoredAppearance:
    """An appearance as the catalog keeps it: where it is, and what was read of the person."""

    id: int
    video: Path
    track: int
    start: float
    end: float
    detections: int
    best_person_id: int | None
    attributes: dict[str, dict[str, float]]
    label: str = "person"
