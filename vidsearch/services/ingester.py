"""Ingest: find what is new or changed, run the pipeline on it, and commit each video whole (catalog, shard and
index together) under the writer lock; record what failed and why; forget what is gone."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..cameras import OriginRules, camera_pattern
from ..clock import zone_named
from ..config import Settings, SpeechConfig
from ..crashpoints import crash_point
from ..errors import ConfigError, DecodeError
from ..events import (
    FramesDone, IngestEvent, IngestPlanned, NoOverlayClock, VideoCutShort, VideoFailed, VideoIndexed, VideoNotHeard,
    VideoSkipped,
)
from ..records import Item, Kind, ProcessedVideo, VideoFile, VideoOrigin
from ..reports import IngestReport
from ..runners import Runner
from ..scan import ScanProblem, content_fingerprint, scan
from ..shards import Shards
from ..speech.stage import with_speech
from ..store import Catalog
from .indexes import Indexes
from .models import Models
from .writes import WriteGuard

_INDEX_SAVE_WAIT_S = 3.0  # longer than a query takes to save an index it repaired

# (settings of this ingest, Ray address or None) -> the runner that processes its videos
MakeRunner = Callable[[Settings, str | None], Runner]


class Ingester:
    def __init__(
        self, settings: Settings, catalog: Catalog, shards: Shards, models: Models, indexes: Indexes,
        writes: WriteGuard, make_runner: MakeRunner,
    ):
        self.settings = settings
        self.catalog = catalog
        self.shards = shards
        self.models = models
        self.indexes = indexes
        self.writes = writes
        self.make_runner = make_runner

    def ingest(
        self, paths: Iterable[Path], *, fps: float | None = None, persons: bool = True, sample: str | None = None,
        reader: str | None = None, ray_address: str | None = None, camera: str | None = None,
        tz: str | None = None, time_from_mtime: bool = False, roots: Iterable[Path] | None = None,
        speech: bool | None = None, asr_model: str | None = None, language: str | None = None,
        on_event: Callable[[IngestEvent], None] = lambda event: None, ocr: bool | None = None,
        time_from_overlay: bool = False, track: Sequence[str] | None = None, faces: bool | None = None,
    ) -> IngestReport:
        """Index new and changed videos under `paths` (see Archive.ingest)."""
        paths = list(paths)
        rules = OriginRules.for_paths(
            paths if roots is None else list(roots), zone_named(tz), camera=camera, camera_pattern=camera_pattern(self.settings.cameras.pattern),
            clock_pattern=self.settings.clock.pattern, use_mtime=time_from_mtime, use_overlay=time_from_overlay,
        )
        fps = fps or self.settings.sampling.fps
        if ray_address and (faces or (faces is None and self.settings.faces.enabled)):
            raise ConfigError("faces are found only in this process: ingest --faces without --ray")
        if fps <= 0:
            raise ConfigError(f"fps must be positive, not {fps}")
        sampling = replace(
            self.settings.sampling, mode=sample or self.settings.sampling.mode,
            reader=reader or self.settings.sampling.reader,
        )
        started = time.perf_counter()
        report = IngestReport()
        with self.writes.writer(wait_s=_INDEX_SAVE_WAIT_S):
            found = list(scan(paths))
            on_event(IngestPlanned(videos=len(found)))
            # the runner's decoder boots while the models load; workers elsewhere load exactly this archive's model
            reads_text = self.settings.screen_text.enabled if ocr is None else ocr
            screen_text = replace(self.settings.screen_text, enabled=reads_text)
            detector = replace(self.settings.detector, labels=tuple(track)) if track else self.settings.detector
            finds_faces = replace(self.settings.faces, enabled=self.settings.faces.enabled if faces is None else faces)
            settings = replace(
                self.settings, sampling=sampling, screen_text=screen_text, detector=detector, faces=finds_faces,
                speech=_speech_config(self.settings, speech, asr_model, language),
            )
            with closing(self.make_runner(settings, ray_address)) as runner:
                self.models.embedder()
                if persons:
                    self.models.detector()
                if screen_text.enabled or time_from_overlay:
                    self.models.text_reader()
                self.indexes.load()
                self.shards.sweep(keep={v.id for v in self.catalog.videos(status="indexed")})
                todo = self._plan(found, report, on_event)
                self._run(runner, todo, fps, persons, rules, report, on_event, settings.speech)
            self.indexes.save()
            self.indexes.grow()
        report.wall_seconds = time.perf_counter() - started
        return report

    def _plan(self, found, report: IngestReport, on_event) -> dict[Path, tuple[VideoFile, str]]:
        """The videos to process, with their fingerprints; scan problems and unreadable files fail here."""
        todo: dict[Path, tuple[VideoFile, str]] = {}
        for entry in found:
            if isinstance(entry, ScanProblem):
                self._fail(entry.path, entry.reason, report, on_event)
                continue
            try:
                fingerprint = self._changed_fingerprint(entry)
            except OSError as error:
                self._fail(entry.path, error.strerror or str(error), report, on_event, entry)
                continue
            if fingerprint is None:
                report.unchanged += 1
                on_event(VideoSkipped(entry.path, "unchanged"))
            else:
                todo[entry.path] = (entry, fingerprint)
        return todo

    def _run(
        self, runner: Runner, todo, fps: float, persons: bool, rules: OriginRules, report: IngestReport, on_event,
        speech: SpeechConfig,
    ) -> None:
        def on_frames(path: Path, count: int) -> None:
            on_event(FramesDone(path, count))

        last_save = time.monotonic()
        results = runner.process(list(todo), fps, persons, on_frames)
        if speech.enabled:
            results = with_speech(results, list(todo), lambda: self.models.transcriber(speech))
        with closing(results):
            for path, result in results:  # on an error, decoding stops before its process does
                video, fingerprint = todo[path]
                if isinstance(result, DecodeError):
                    self._fail(path, result.reason, report, on_event, video)
                    continue
                origin = rules.origin(path, video.mtime_ns, result.info.duration)
                if rules.use_overlay and origin.start is None:
                    origin = self._overlay_origin(path, origin, result.info.duration, on_event)
                with self.writes.writing(f"indexing {path}"):
                    self.commit(video, fingerprint, result, origin)
                report.add(path, result)
                if result.audio_problem:
                    on_event(VideoNotHeard(path, result.audio_problem))
                if result.info.cut_short:
                    on_event(VideoCutShort(path, result.info.duration, result.info.declared_duration))
                on_event(VideoIndexed(path, len(result.frames), len(result.persons), result.info.duration))
                if time.monotonic() - last_save > self.settings.index.checkpoint_seconds:
                    self.indexes.save()
                    last_save = time.monotonic()

    def _overlay_origin(self, path: Path, origin: VideoOrigin, duration: float, on_event) -> VideoOrigin:
        """The origin with its start read from the date and time drawn on the picture, where they can be trusted."""
        from ..screen_text.overlay import overlay_start

        clock = overlay_start(
            path, duration, zone_named(origin.zone), self.models.text_reader(), self.settings.screen_text
        )
        if clock.start is None:
            on_event(NoOverlayClock(path, clock.why_not))
            return origin
        return replace(origin, start=clock.start.timestamp(), time_source="overlay")

    def _changed_fingerprint(self, video: VideoFile) -> str | None:
        """The file's fingerprint when it needs indexing; None when the archive already has this content."""
        known = self.catalog.video(video.path)
        # an unchanged file that failed stays failed until it changes
        if known and (known.size, known.mtime_ns) == (video.size, video.mtime_ns):
            return None
        fingerprint = content_fingerprint(video.path)
        if known and known.status == "indexed" and known.fingerprint == fingerprint:
            self.catalog.touch(known.id, video.mtime_ns)
            return None
        return fingerprint

    def commit(
        self, video: VideoFile, fingerprint: str, result: ProcessedVideo, origin: VideoOrigin | None = None
    ) -> None:
        """One video into the archive: its shard is written inside the catalog's transaction, then its vectors join
        the indexes (an index saved later, or reconciled on opening, catches up after a crash)."""
        self.indexes.load()  # before the catalog changes, so they hold the old version's vectors to drop
        old = self.catalog.video(video.path)
        old_ids = self.catalog.vector_ids_of_video(old.id) if old else {}
        self.models.record_model()
        embedded = result.embedded_persons

        def write_shard(video_id: int, frame_ids: np.ndarray, person_ids: np.ndarray) -> None:
            frames = result.frames
            items = [
                Item(vector_id=int(i), kind="frame", frame_index=f.frame_index, t=f.t)
                for i, f in zip(frame_ids, frames)
            ] + result.crop_items(person_ids)
            vectors = np.concatenate([result.frame_vectors, result.person_vectors])
            self.shards.write(video_id, video.path, items, vectors)
            crash_point("shard-written")

        started = time.perf_counter()
        # video and vector ids are never reused: the new shard never stands where the old one is
        _, frame_ids, person_ids = self.catalog.replace_video(video, fingerprint, result, write_shard, origin)
        crash_point("committed")
        self.indexes.caught_up()
        if old:
            self._drop_vectors(old.id, old_ids)
        self.indexes.add("frame", frame_ids, result.frame_vectors)
        self.indexes.add("person", person_ids[embedded], result.person_vectors)
        result.seconds.write += time.perf_counter() - started

    def _drop_vectors(self, video_id: int, ids: dict[Kind, np.ndarray]) -> None:
        """After the catalog forgot a video: its vectors leave the indexes and its shard is deleted."""
        self.indexes.remove(ids)
        self.shards.remove([video_id])

    def _fail(self, path: Path, reason: str, report: IngestReport, on_event, video: VideoFile | None = None) -> None:
        old = self.catalog.video(path)
        old_ids = self.catalog.vector_ids_of_video(old.id) if old else {}
        with self.writes.writing(f"recording the failure of {path}"):
            self.catalog.record_failure(video or VideoFile(path=path, size=0, mtime_ns=0), reason)
        self.indexes.caught_up()
        if old:
            self._drop_vectors(old.id, old_ids)
        report.failed.append((path, reason))
        on_event(VideoFailed(path, reason))

    def prune(self, under: Iterable[Path] | None = None) -> list[Path]:
        """Forget videos whose files are gone (only those in the folders `under`, where given); returns their paths."""
        folders = None if under is None else [Path(os.path.abspath(f)) for f in under]
        with self.writes.writer():
            gone = [
                v for v in self.catalog.videos()
                if not v.path.exists() and (folders is None or any(v.path.is_relative_to(f) for f in folders))
            ]
            if any(video.status == "indexed" for video in gone):
                self.indexes.load()  # loaded before the catalog changes, so the vectors to drop are known to them
            for video in gone:
                ids = self.catalog.vector_ids_of_video(video.id)
                self.catalog.remove([video.id])
                self.indexes.caught_up()
                self._drop_vectors(video.id, ids)
            self.indexes.save()
        return [v.path for v in gone]


def _speech_config(settings: Settings, speech: bool | None, model: str | None, language: str | None) -> SpeechConfig:
    """The settings' speech section with an ingest's own choices (None keeps the setting)."""
    config = settings.speech
    return replace(
        config, enabled=config.enabled if speech is None else speech, model=model or config.model,
        language=language or config.language,
    )
