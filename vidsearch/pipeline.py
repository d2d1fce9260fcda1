"""The order of the stages: decode, drop duplicates, detect, track, crop, embed, summarize the tracks and read their
attributes. Only this module knows it; its result holds everything a video yields.

Decoding runs ahead in a child process (decode.DecodeWorker, which gives up on a file that hangs its
decoder) while the models work on the previous batch; a thread here takes its frames into a bounded queue,
so the wall time approaches the slowest stage rather than the sum of all of them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .attributes import AttributeReader
from .config import SamplingConfig, Settings
from .crashpoints import crash_point
from .decode import DecodeWorker, Decoded
from .dedup import DuplicateFilter
from .detect import Detector, SceneTiles, crop
from .embed import ClipEmbedder
from .errors import DecodeError
from .faces import FaceModel, PersonBox, VideoFaces
from .records import FoundObject, FoundPerson, Frame, ProcessedVideo, SampledFrame, StageSeconds, VideoInfo
from .track import Tracker, colour_signature, summarize_tracks


@dataclass(frozen=True, slots=True)
class _Batch:
    path: Path
    frames: list[Frame]
    seconds: float


@dataclass(frozen=True, slots=True)
class _End:
    path: Path
    info: VideoInfo
    reader: str


@dataclass(frozen=True, slots=True)
class _Failed:
    path: Path
    error: DecodeError


@dataclass(frozen=True, slots=True)
class _Crashed:
    error: BaseException  # a bug in the decode thread, raised again in the caller's thread


_DONE = object()


class _VideoWork:
    """The running state of one video between its batches."""

    def __init__(self, settings: Settings, dim: int, faces: FaceModel | None = None):
        self.settings = settings
        self.faces = VideoFaces(faces, settings.faces) if faces is not None else None
        self.duplicates = DuplicateFilter(settings.dedup) if settings.dedup.enabled else None
        self.scene = SceneTiles(settings.dedup if settings.dedup.enabled else None)
        self.tracker = Tracker(settings.track)
        self.frames: list[SampledFrame] = []
        self.skipped = 0
        self.detections: list[tuple[int, object, int]] = []  # (frame position, detection, track)
        self.objects: list[FoundObject] = []
        # pixels of crops that may still be chosen, by detection position; copies, so whole frames are not held
        self.pending: dict[int, np.ndarray] = {}
        self.embedded: list[int] = []  # detection positions in the order of their vectors
        self.frame_vectors: list[np.ndarray] = []
        self.person_vectors: list[np.ndarray] = [np.zeros((0, dim), np.float32)]
        self.seconds = StageSeconds()

    def keep(self, batch: list[Frame]) -> list[Frame]:
        if self.duplicates is None:
            return batch
        kept = []
        for frame in batch:
            if self.duplicates.is_duplicate(frame):
                self.skipped += 1
                self.tracker.hold(frame.t)
            else:
                kept.append(frame)
        return kept

    def track(self, frames: list[Frame], detections_per_frame) -> list[int]:
        """Give each detection its track; returns the detection positions whose crops are chosen now."""
        chosen: list[int] = []
        for frame, detections in zip(frames, detections_per_frame):
            position = len(self.frames)
            self.frames.append(SampledFrame(frame_index=frame.index, t=frame.t))
            keyed = []
            for detection in detections:
                if detection.label not in self.settings.detector.labels:
                    self.objects.append(FoundObject(frame_position=position, detection=detection))
                    continue
                cut = crop(frame, detection, self.settings.crop)
                if cut is None:
                    continue
                key = len(self.detections)
                self.detections.append((position, detection, -1))
                self.pending[key] = cut.image.copy()
                keyed.append((key, detection.box, detection.score, colour_signature(cut.image)))
            tracks, closed = self.tracker.step(frame.t, keyed)
            for (key, *_), number in zip(keyed, tracks):
                self.detections[key] = (*self.detections[key][:2], number)
            chosen.extend(closed)
        keep = self.tracker.candidates() | set(chosen)
        # pixels stay only for crops that are chosen or still a track's best in its window
        for key in [k for k in self.pending if k not in keep]:
            del self.pending[key]
        return chosen

    def result(
        self, info: VideoInfo, reader: str, fps: float, attributes: Callable[[], AttributeReader] | None
    ) -> ProcessedVideo:
        embedded = set(self.embedded)
        persons = [
            FoundPerson(frame_position=position, detection=detection, track=number, embedded=key in embedded)
            for key, (position, detection, number) in enumerate(self.detections)
        ]
        order = {key: i for i, key in enumerate(self.embedded)}
        vectors = np.concatenate(self.person_vectors)
        # vectors follow the persons' order, so the store can pair them without keys
        person_vectors = vectors[[order[key] for key in sorted(embedded)]] if embedded else vectors
        dim = vectors.shape[1]
        started = time.perf_counter()
        appearances = summarize_tracks(self.frames, persons, person_vectors)
        if appearances and attributes is not None:
            read = attributes().read(np.stack([a.pooled for a in appearances]))
            appearances = [replace(a, attributes=probabilities) for a, probabilities in zip(appearances, read)]
        self.seconds.embed += time.perf_counter() - started
        return ProcessedVideo(
            info=info,
            reader=reader,
            sample_fps=fps,
            frames=self.frames,
            frames_skipped=self.skipped,
            persons=persons,
            objects=self.objects,
            appearances=appearances,
            frame_vectors=np.concatenate(self.frame_vectors) if self.frame_vectors else np.zeros((0, dim), np.float32),
            person_vectors=person_vectors,
            seconds=self.seconds,
            faces=self.faces.result() if self.faces is not None else [],
        )


def process_videos(
    paths: Iterable[Path],
    settings: Settings,
    embedder: ClipEmbedder,
    detector: Detector | None,
    fps: float,
    on_frames: Callable[[Path, int], None] = lambda path, n: None,
    decoding: DecodeWorker | None = None,
    attributes: Callable[[], AttributeReader] | None = None,
    faces: FaceModel | None = None,
) -> Iterator[tuple[Path, ProcessedVideo | DecodeError]]:
    """Each video's result (or why it could not be decoded: refused, timed out, crashed), in the order given.

    `decoding` is a decode worker the caller started early and closes; by default one lives for this call.
    `attributes` gives the reader of the persons' attributes, loaded when a video first has an appearance.
    With `faces`, the faces in kept frames are found, described and grouped by person appearance.
    """
    sampling = settings.sampling
    worker = decoding or decode_worker(sampling)
    messages: queue.Queue = queue.Queue(maxsize=sampling.prefetch_batches)
    stop = threading.Event()
    decoder = threading.Thread(
        target=_decode_all, args=(list(paths), fps, sampling, worker, messages, stop),
        name="vidsearch-decode", daemon=True,
    )
    decoder.start()
    work: _VideoWork | None = None
    try:
        for message in iter(messages.get, _DONE):
            if isinstance(message, _Crashed):
                raise message.error
            if isinstance(message, _Failed):
                work = None
                yield message.path, message.error
                continue
            if work is None:
                work = _VideoWork(settings, embedder.identity.dim, faces)
            if isinstance(message, _End):
                _embed_crops(work, work.tracker.finish(), embedder)
                yield message.path, work.result(message.info, message.reader, fps, attributes)
                work = None
                continue
            work.seconds.decode += message.seconds
            crash_point("decoding")
            _run_models(work, message.frames, embedder, detector)
            on_frames(message.path, len(message.frames))
    finally:
        stop.set()
        decoder.join()
        if decoding is None:
            worker.close()


def decode_worker(sampling: SamplingConfig) -> DecodeWorker:
    """A decode worker process for these settings, booting from now on."""
    return DecodeWorker(sampling.reader, sampling.mode, sampling.decode_timeout_s, sampling.decode_cap_s_per_video_s)


def _run_models(work: _VideoWork, batch: list[Frame], embedder: ClipEmbedder, detector: Detector | None) -> None:
    frames = work.keep(batch)
    if not frames:
        return
    started = time.perf_counter()
    detections = detector.detect(frames, work.scene) if detector is not None else [[] for _ in frames]
    work.seconds.detect += time.perf_counter() - started
    first = len(work.frames)
    chosen = work.track(frames, detections)
    if work.faces is not None:
        _find_faces(work, frames, first)
    started = time.perf_counter()
    work.frame_vectors.append(embedder.embed_images([frame.image for frame in frames]))
    work.seconds.embed += time.perf_counter() - started
    _embed_crops(work, chosen, embedder)


def _find_faces(work: _VideoWork, frames: list[Frame], first: int) -> None:
    """Faces in the frames just tracked (kept positions from `first` on), inside their persons' boxes."""
    started = time.perf_counter()
    persons: dict[int, list[PersonBox]] = {}
    for position, detection, track in reversed(work.detections):  # in frame order: the batch's are last
        if position < first:
            break
        persons.setdefault(position, []).append(PersonBox(detection.box, track))
    for position, frame in enumerate(frames, start=first):
        work.faces.add(position, frame, persons.get(position, []))
    work.seconds.faces += time.perf_counter() - started


def _embed_crops(work: _VideoWork, chosen: list[int], embedder: ClipEmbedder) -> None:
    if not chosen:
        return
    started = time.perf_counter()
    work.person_vectors.append(embedder.embed_images([work.pending.pop(key) for key in chosen]))
    work.embedded.extend(chosen)
    work.seconds.embed += time.perf_counter() - started


def _decode_all(
    paths: list[Path], fps: float, sampling: SamplingConfig, worker: DecodeWorker, messages: queue.Queue,
    stop: threading.Event,
) -> None:
    def send(message) -> bool:
        """Wait for room in the queue unless the consumer has stopped listening."""
        while not stop.is_set():
            try:
                messages.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        _decode_each(paths, fps, sampling, worker, send, stop)
    except BaseException as error:  # noqa: BLE001 - handed to the consuming thread, which raises it
        send(_Crashed(error))


def _decode_each(
    paths: list[Path], fps: float, sampling: SamplingConfig, worker: DecodeWorker,
    send: Callable[[object], bool], stop: threading.Event,
) -> None:
    largest_batch = sampling.batch_megabytes * 2**20
    for path in paths:
        batch: list[Frame] = []
        started = time.perf_counter()
        try:
            with closing(worker.decode(path, fps, stop)) as decoded:
                for item in decoded:
                    if isinstance(item, Decoded):
                        if batch and not send(_Batch(path, batch, time.perf_counter() - started)):
                            return
                        if not send(_End(path, item.info, item.reader)):
                            return
                        break
                    batch.append(item)
                    # big frames make short batches, so the frames held in the queue stay within bounds
                    if len(batch) == sampling.decode_batch or sum(f.image.nbytes for f in batch) >= largest_batch:
                        if not send(_Batch(path, batch, time.perf_counter() - started)):
                            return
                        batch, started = [], time.perf_counter()
        except DecodeError as error:
            if not send(_Failed(path, error)):
                return
        if stop.is_set():
            return
    send(_DONE)
