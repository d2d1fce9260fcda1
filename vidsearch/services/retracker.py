"""Retrack: classes that an archive's videos kept only as per-frame objects (a car, a bus) become tracked things, with
appearances, crops and embeddings, from the detections already stored. No detector runs and no frame is embedded
again; a video is decoded only when it holds such detections, and only up to the last of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import ConfigError, DecodeError
from ..pipeline import DecodeWorkers, track_again
from ..records import CatalogVideo, ProcessedVideo
from ..shards import Shards
from ..store import Catalog
from ..store.tracks import TrackCatalog
from .indexes import Indexes
from .models import Models
from .writes import WriteGuard

_INDEX_SAVE_WAIT_S = 60.0


@dataclass(slots=True)
class RetrackReport:
    videos: int = 0  # videos that gained tracks
    appearances: int = 0
    crops: int = 0  # crops embedded
    unchanged: int = 0  # videos without untracked detections of the classes
    failed: list[tuple[Path, str]] = field(default_factory=list)
    wall_seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "videos": self.videos, "appearances": self.appearances, "crops": self.crops, "unchanged": self.unchanged,
            "failed": [{"path": str(path), "reason": reason} for path, reason in self.failed],
            "wall_seconds": round(self.wall_seconds, 3),
        }


class Retracker:
    def __init__(
        self, settings: Settings, catalog: Catalog, shards: Shards, models: Models, indexes: Indexes,
        writes: WriteGuard, decoders: DecodeWorkers,
    ):
        self.settings = settings
        self.catalog = catalog
        self.tracks = TrackCatalog(catalog.engine)
        self.shards = shards
        self.models = models
        self.indexes = indexes
        self.writes = writes
        self.decoders = decoders

    def retrack(
        self, classes: Sequence[str] | None = None, on_video: Callable[[Path, int | str], None] = lambda p, n: None,
    ) -> RetrackReport:
        """Track `classes` (default: the settings' tracked classes) in every indexed video that holds them as
        untracked objects; `on_video(path, appearances or the reason it failed)` after each."""
        classes = tuple(classes or self.settings.detector.labels)
        settings = replace(self.settings, detector=replace(self.settings.detector, labels=classes))
        started, report = time.perf_counter(), RetrackReport()
        with self.writes.writer(wait_s=_INDEX_SAVE_WAIT_S):
            if self.catalog.stored_model() is None:
                raise ConfigError("the archive holds no indexed video yet: nothing to retrack")
            self.indexes.load()
            for video in self.catalog.videos(status="indexed"):
                found = self._retrack_video(video, classes, settings)
                if found is None:
                    report.unchanged += 1
                    continue
                if isinstance(found, DecodeError):
                    report.failed.append((video.path, found.reason))
                    on_video(video.path, found.reason)
                    continue
                report.videos += 1
                report.appearances += len(found.appearances)
                report.crops += len(found.person_vectors)
                on_video(video.path, len(found.appearances))
            self.indexes.save()
        report.wall_seconds = time.perf_counter() - started
        return report

    def _retrack_video(
        self, video: CatalogVideo, classes: tuple[str, ...], settings: Settings
    ) -> ProcessedVideo | DecodeError | None:
        by_frame_id = self.tracks.objects_of_video(video.id, classes)
        if not by_frame_id:
            return None
        stored = self.catalog.sampled_frames(video.id)
        detections = {position: by_frame_id[fid] for position, (fid, _) in enumerate(stored) if fid in by_frame_id}
        try:
            status = video.path.stat()
        except OSError:
            return DecodeError(video.path, "the source file is gone")
        if (status.st_size, status.st_mtime_ns) != (video.size, video.mtime_ns):
            return DecodeError(video.path, "the source file changed since it was indexed: ingest it again")
        decoding = self.decoders.get(replace(settings.sampling, reader=video.reader or settings.sampling.reader))
        result = track_again(
            video.path, [frame for _, frame in stored], detections, settings, self.models.embedder(),
            video.sample_fps or settings.sampling.fps, decoding, self.models.attribute_reader,
            first_track=self.tracks.last_track(video.id) + 1,
        )
        if isinstance(result, DecodeError):
            return result
        self._commit(video, [fid for fid, _ in stored], result, classes)
        return result

    def _commit(self, video: CatalogVideo, frame_ids: list[int], result: ProcessedVideo, classes) -> None:
        def write_shard(person_ids: np.ndarray) -> None:
            self.shards.append(video.id, video.path, result.crop_items(person_ids), result.person_vectors)

        with self.writes.writing(f"retracking {video.path}"):
            person_ids = self.tracks.add_tracks(
                video.id, frame_ids, result.persons, result.appearances, classes, write_shard
            )
        self.indexes.caught_up()
        self.indexes.add("person", person_ids[result.embedded_persons], result.person_vectors)
