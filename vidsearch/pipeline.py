"""The order of the stages for one video: decode, detect, crop, embed. Only this module knows it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Settings
from .decode import VideoDecoder
from .detect import Detector, crop
from .embed import ClipEmbedder
from .records import FoundPerson, SampledFrame, VideoInfo


@dataclass(slots=True)
class StageSeconds:
    """Wall time spent in each stage, accumulated over batches."""

    decode: float = 0.0
    detect: float = 0.0
    embed: float = 0.0
    write: float = 0.0

    def add(self, other: StageSeconds) -> None:
        self.decode += other.decode
        self.detect += other.detect
        self.embed += other.embed
        self.write += other.write


@dataclass(frozen=True, slots=True, eq=False)
class ProcessedVideo:
    """Everything one video contributes to the archive, without pixels."""

    info: VideoInfo
    frames: list[SampledFrame]
    persons: list[FoundPerson]
    frame_vectors: np.ndarray
    person_vectors: np.ndarray
    seconds: StageSeconds = field(default_factory=StageSeconds)


def process_video(
    path: Path,
    settings: Settings,
    embedder: ClipEmbedder,
    detector: Detector | None,
    fps: float,
    on_frames: Callable[[int], None] = lambda n: None,
) -> ProcessedVideo:
    """Decode the sampled frames in batches; detect and embed each batch while its pixels are in memory."""
    seconds = StageSeconds()
    frames: list[SampledFrame] = []
    persons: list[FoundPerson] = []
    frame_vectors: list[np.ndarray] = []
    person_vectors: list[np.ndarray] = []
    with VideoDecoder(path) as decoder:
        batches = decoder.frames(fps, batch_size=settings.sampling.decode_batch)
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            seconds.decode += time.perf_counter() - started
            if batch is None:
                break
            crops = []
            if detector is not None:
                started = time.perf_counter()
                for position, (frame, detections) in enumerate(zip(batch, detector.detect(batch)), len(frames)):
                    for detection in detections:
                        cut = crop(frame, detection, settings.crop)
                        if cut is not None:
                            crops.append(cut)
                            persons.append(FoundPerson(frame_position=position, detection=detection))
                seconds.detect += time.perf_counter() - started
            started = time.perf_counter()
            frame_vectors.append(embedder.embed_images([frame.image for frame in batch]))
            person_vectors.append(embedder.embed_images([cut.image for cut in crops]))
            seconds.embed += time.perf_counter() - started
            frames.extend(SampledFrame(frame_index=f.index, t=f.t) for f in batch)
            on_frames(len(batch))
        info = decoder.info
    dim = embedder.identity.dim
    return ProcessedVideo(
        info=info,
        frames=frames,
        persons=persons,
        frame_vectors=np.concatenate(frame_vectors) if frame_vectors else np.zeros((0, dim), np.float32),
        person_vectors=np.concatenate(person_vectors) if person_vectors else np.zeros((0, dim), np.float32),
        seconds=seconds,
    )
