"""The order of the stages: decode, drop duplicates, detect, track (persons, vehicles: each family of tracked classes
on its own), crop, embed, read text on screen where asked, summarize the tracks and read their attributes. Only this
module knows it; its result holds everything a video yields.

Decoding runs ahead in a child process (decode.DecodeWorker, which gives up on a file that hangs its
decoder) while the models work on the previous batch; a thread here takes its frames into a bounded queue,
so the wall time approaches the slowest stage rather than the sum of all of them.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import defaultdict
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
from .records import (
    Appearance, Detection, FoundObject, FoundPerson, Frame, ProcessedVideo, SampledFrame, StageSeconds, VideoInfo,
)
from .screen_text import TextReader, TextSpans
from .things import Family, families, family_of
from .track import Tracker, colour_signature, summarize_tracks

# the attribute reader of a family of tracked classes (None: the family has no vocabulary)
AttributeReaders = Callable[[str], AttributeReader | None]


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

    def __init__(
        self, settings: Settings, dim: int, first_track: int = 0, reads_text: bool = False,
        faces: FaceModel | None = None,
    ):
        self.settings = settings
        self.faces = VideoFaces(faces, settings.faces) if faces is not None else None
        self.duplicates = DuplicateFilter(settings.dedup) if settings.dedup.enabled else None
        self.scene = SceneTiles(settings.dedup if settings.dedup.enabled else None)
        self.families = families(settings)
        numbers = itertools.count(first_track)
        self.trackers = {name: Tracker(family.track, numbers) for name, family in self.families.items()}
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
        self.texts = TextSpans(settings.screen_text) if reads_text else None

    def keep(self, batch: list[Frame]) -> list[Frame]:
        if self.duplicates is None:
            return batch
        kept = []
        for frame in batch:
            if self.duplicates.is_duplicate(frame):
                self.skipped += 1
                self.hold(frame.t)
            else:
                kept.append(frame)
        return kept

    def hold(self, t: float) -> None:
        for tracker in self.trackers.values():
            tracker.hold(t)
        if self.texts is not None:
            self.texts.hold(t)

    def finish(self) -> list[int]:
        return [key for tracker in self.trackers.values() for key in tracker.finish()]

    def track(self, frames: list[Frame], detections_per_frame) -> list[int]:
        """Give each detection its track; returns the detection positions whose crops are chosen now."""
        chosen: list[int] = []
        for frame, detections in zip(frames, detections_per_frame):
            position = len(self.frames)
            self.frames.append(SampledFrame(frame_index=frame.index, t=frame.t))
            keyed: dict[str, list] = {name: [] for name in self.trackers}
            for detection in detections:
                family = family_of(detection.label, self.families)
                if family is None:
                    self.objects.append(FoundObject(frame_position=position, detection=detection))
                    continue
                cut = crop(frame, detection, self.settings.crop)
                if cut is None:
                    continue
                key = len(self.detections)
                self.detections.append((position, detection, -1))
                self.pending[key] = cut.image.copy()
                keyed[family.name].append((key, detection.box, detection.score, colour_signature(cut.image)))
            for name, tracker in self.trackers.items():
                tracks, closed = tracker.step(frame.t, keyed[name])
                for (key, *_), number in zip(keyed[name], tracks):
                    self.detections[key] = (*self.detections[key][:2], number)
                chosen.extend(closed)
        keep = set(chosen).union(*(tracker.candidates() for tracker in self.trackers.values()))
        # pixels stay only for crops that are chosen or still a track's best in its window
        for key in [k for k in self.pending if k not in keep]:
            del self.pending[key]
        return chosen

    def result(self, info: VideoInfo, reader: str, fps: float, attributes: AttributeReaders | None) -> ProcessedVideo:
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
        if attributes is not None:
            appearances = read_attributes(appearances, self.families, attributes)
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
            texts=self.texts.finish() if self.texts is not None else [],
            faces=self.faces.result() if self.faces is not None else [],
        )


def read_attributes(
    appearances: list[Appearance], tracked: dict[str, Family], readers: AttributeReaders
) -> list[Appearance]:
    """Appearances read against their family's vocabulary, a family at a time: groups read with CLIP from the pooled
    embeddings, and groups measured from the track (its direction) as the one label measured, at probability 1."""
    by_family: dict[str, list[int]] = defaultdict(list)
    for position, appearance in enumerate(appearances):
        family = family_of(appearance.label, tracked)
        if family is not None:
            by_family[family.name].append(position)
    read = list(appearances)
    for name, positions in by_family.items():
        reader = readers(name)
        if reader is None:
            continue
        measured = [group for group in reader.vocabulary.groups if group.from_track]
        found = reader.read(np.stack([appearances[p].pooled for p in positions]))
        for position, probabilities in zip(positions, found):
            direction = appearances[position].direction
            for group in measured if direction is not None else ():
                probabilities[group.name] = {label.name: float(label.name == direction) for label in group.labels}
            read[position] = replace(appearances[position], attributes=probabilities)
    return read


def process_videos(
    paths: Iterable[Path],
    settings: Settings,
    embedder: ClipEmbedder,
    detector: Detector | None,
    fps: float,
    on_frames: Callable[[Path, int], None] = lambda path, n: None,
    decoding: DecodeWorker | None = None,
    attributes: AttributeReaders | None = None,
    text_reader: TextReader | None = None,
    face_model: FaceModel | None = None,
    before_embedding: Callable[[list[np.ndarray], list[np.ndarray]], None] | None = None,
) -> Iterator[tuple[Path, ProcessedVideo | DecodeError]]:
    """Each video's result (or why it could not be decoded: refused, timed out, crashed), in the order given.

    `decoding` is a decode worker the caller started early and closes; by default one lives for this call.
    `attributes` gives the attribute reader of a family of tracked classes, loaded when a video first has an
    appearance of that family.
    `text_reader`, where given, reads the text on screen in kept frames and inside the detector's vehicle boxes.
    With `face_model`, the faces in kept frames are found, described and grouped by person appearance.
    `before_embedding` sees each batch's frames and crops before they are embedded (the int8 check's sample).
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
                work = _VideoWork(
                    settings, embedder.identity.dim, reads_text=text_reader is not None, faces=face_model,
                )
            if isinstance(message, _End):
                _embed_crops(work, work.finish(), embedder)
                yield message.path, work.result(message.info, message.reader, fps, attributes)
                work = None
                continue
            work.seconds.decode += message.seconds
            crash_point("decoding")
            _run_models(work, message.frames, embedder, detector, text_reader, before_embedding)
            on_frames(message.path, len(message.frames))
    finally:
        stop.set()
        decoder.join()
        if decoding is None:
            worker.close()


def track_again(
    path: Path, frames: list[SampledFrame], detections: dict[int, list[Detection]], settings: Settings,
    embedder: ClipEmbedder, fps: float, decoding: DecodeWorker, attributes: AttributeReaders | None = None,
    first_track: int = 0,
) -> ProcessedVideo | DecodeError:
    """An indexed video's stored detections of classes it did not track (`detections`, by kept frame position),
    tracked now as ingest would have tracked them: its sampled frames are decoded again, up to the last frame
    with such a detection, for their crops; neither the detector nor the frame embedding runs. Frames ingest
    skipped as duplicates hold the tracks as they did then. The result holds only the new tracks (no frames)."""
    work = _VideoWork(settings, embedder.identity.dim, first_track)
    last = max(detections, default=-1)
    kept = {frame.frame_index: position for position, frame in enumerate(frames) if position <= last}
    stop = threading.Event()
    try:
        with closing(decoding.decode(path, fps, stop)) as decoded:
            for item in decoded:
                if isinstance(item, Decoded) or len(work.frames) > last:
                    break
                position = kept.get(item.index)
                if position is None:
                    work.hold(item.t)
                    continue
                if position != len(work.frames):
                    raise DecodeError(path, "its kept frames are not found again at the same rate")
                _embed_crops(work, work.track([item], [detections.get(position, [])]), embedder)
    except DecodeError as error:
        return error
    finally:
        stop.set()
    _embed_crops(work, work.finish(), embedder)
    if len(work.frames) <= last:
        return DecodeError(path, "it ends before its kept frames do")
    info = VideoInfo(duration=0.0, fps=fps, width=0, height=0, frame_count=0, timeline="pts")
    return work.result(info, decoding.reader, fps, attributes)


def _worker_settings(sampling: SamplingConfig) -> tuple:
    """What a decode worker is started with: workers of equal settings are interchangeable."""
    return sampling.reader, sampling.mode, sampling.decode_timeout_s, sampling.decode_cap_s_per_video_s


def decode_worker(sampling: SamplingConfig) -> DecodeWorker:
    """A decode worker process for these settings, booting from now on."""
    return DecodeWorker(*_worker_settings(sampling))


class DecodeWorkers:
    """Decode processes kept for an archive's life, one per way of decoding. Successive ingests, and the rounds of a
    long `watch`, reuse one instead of booting another (an interpreter and PyAV: half a second of a core each).
    Used under the archive's writer lock, so by one thread at a time."""

    def __init__(self):
        self._workers: dict[tuple, DecodeWorker] = {}

    def get(self, sampling: SamplingConfig) -> DecodeWorker:
        """The worker for these settings, started (booting from now on) if there is none yet; one that died or was
        killed over a file that hung it starts again at its next decode."""
        key = _worker_settings(sampling)
        if key not in self._workers:
            self._workers[key] = DecodeWorker(*key)
        return self._workers[key]

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()


def _run_models(
    work: _VideoWork, batch: list[Frame], embedder: ClipEmbedder, detector: Detector | None,
    text_reader: TextReader | None = None,
    before_embedding: Callable[[list[np.ndarray], list[np.ndarray]], None] | None = None,
) -> None:
    frames = work.keep(batch)
    if not frames:
        return
    started = time.perf_counter()
    detections = detector.detect(frames, work.scene) if detector is not None else [[] for _ in frames]
    work.seconds.detect += time.perf_counter() - started
    first = len(work.frames)
    chosen = work.track(frames, detections)
    if text_reader is not None:
        started = time.perf_counter()
        for position, (frame, readings) in enumerate(zip(frames, text_reader.read_frames(frames, detections)), first):
            work.texts.add(position, frame.t, readings)
        work.seconds.read += time.perf_counter() - started
    if work.faces is not None:
        _find_faces(work, frames, first)
    started = time.perf_counter()
    if before_embedding is not None:
        before_embedding([frame.image for frame in frames], list(work.pending.values()))
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
        if detection.label == "person":  # faces are looked for in persons, not in the other tracked things
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
