"""Pictures and video of hits: export (clips, frames, crops, evidence), thumbnails, whole frames and clips a browser
plays, each made on first call and kept in the archive folder (thumbs/, frames/, clips/); and the provenance that
export records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import ConfigError, DecodeError, NotFoundError
from ..export import ExportReport, PlayableVideo
from ..records import Hit, Item
from ..scan import content_fingerprint
from ..speech.records import SpokenWord
from ..store import Catalog
from ..store.speech import segments_between
from .searcher import Searcher


class Media:
    def __init__(self, settings: Settings, catalog: Catalog, searcher: Searcher):
        self.settings = settings
        self.folder = settings.archive
        self.catalog = catalog
        self.searcher = searcher

    def export(
        self, hits: Sequence[Hit | int], out: Path, *, pad: float = 3.0, query: str | dict | None = None
    ) -> ExportReport:
        from ..export import ExportTarget, export_hits

        if pad < 0:
            raise ConfigError(f"pad must be 0 or more seconds, not {pad}")
        targets, problems = [], []
        for hit in hits:
            try:
                found = self.searcher.describe(int(hit)) if isinstance(hit, (int, np.integer)) else hit
            except NotFoundError as error:
                problems.append(str(error))
                continue
            target = ExportTarget(found.item, found.video, found.to_json())
            problem = self._source_problem(found.video)
            if problem:
                problems.append(f"hit {found.item.vector_id} ({found.video}): {problem}")
                continue
            targets.append(replace(
                target, neighbours=self._persons_in_frame(found.item, found.video),
                words=self._spoken(found.video, target.span, pad),
            ))
        report = export_hits(targets, Path(out), self._provenance(query), pad=pad, crop=self.settings.crop)
        report.problems[:0] = problems
        return report

    def _spoken(self, video: Path, span: tuple[float, float], pad: float) -> tuple[SpokenWord, ...]:
        """The words said in a hit's clip (its span +- pad): the clip's subtitles."""
        segments = segments_between(self.catalog.engine, video, span[0] - pad, span[1] + pad)
        return tuple(word for segment in segments for word in segment.words)

    def thumbnail(self, hit_id: int) -> Path:
        from ..thumbnails import crop_pixels, grab_frame, save_jpeg, thumbnail

        path = self.folder / "thumbs" / f"{hit_id}.jpg"  # vector ids are never reused: the file stays right
        if not path.exists():
            found = self.searcher.describe(hit_id)
            image = grab_frame(found.video, found.item.t)
            if found.item.box is not None:
                image = crop_pixels(image, found.item.box, self.settings.crop)
            save_jpeg(thumbnail(image), path, quality=85)
        return path

    def frame_picture(self, hit_id: int) -> Path:
        from ..thumbnails import grab_frame, save_jpeg

        path = self.folder / "frames" / f"{hit_id}.jpg"
        if not path.exists():
            found = self.searcher.describe(hit_id)
            save_jpeg(grab_frame(found.video, found.item.t), path, quality=90)
        return path

    def playable_video(self, hit_id: int, pad: float = 10.0) -> PlayableVideo:
        from ..export import browser_playable, cut_clip

        found = self.searcher.describe(hit_id)
        if not found.video.is_file():
            raise DecodeError(found.video, "the source file is gone")
        if browser_playable(found.video):
            return PlayableVideo(found.video, 0.0, transcoded=False)
        clip = self.folder / "clips" / f"{hit_id}.mp4"
        record = clip.with_suffix(".json")
        if not (clip.exists() and record.exists()):
            cut = cut_clip(found.video, max(0.0, found.item.t - pad), found.item.t + pad, clip)
            record.write_text(json.dumps(cut.to_json()))
        return PlayableVideo(clip, json.loads(record.read_text())["start"], transcoded=True)

    def _source_problem(self, video: Path) -> str | None:
        known = self.catalog.video(video)
        if not video.is_file():
            return "the source file is gone"
        stat = video.stat()
        touched = known is None or (stat.st_size, stat.st_mtime_ns) != (known.size, known.mtime_ns)
        if touched and (known is None or content_fingerprint(video) != known.fingerprint):
            return "the source file has changed since it was indexed: ingest it again"
        return None

    def _persons_in_frame(self, item: Item, video: Path) -> tuple[Item, ...]:
        known = self.catalog.video(video)
        persons = self.catalog.persons_of_video(known.id) if known else []
        return tuple(
            person for person, *_ in persons
            if person.frame_index == item.frame_index and person.vector_id != item.vector_id
        )

    def _provenance(self, query: str | dict | None):
        from importlib.metadata import PackageNotFoundError, version

        from ..export import Provenance
        from ..identity import weights_sha256

        weights = self.settings.detector.weights
        stored = self.catalog.stored_model()
        try:
            ours = version("vidsearch")
        except PackageNotFoundError:
            ours = "unknown"
        return Provenance(
            query=query,
            model=stored.to_json() if stored else None,
            detector={
                "weights": weights,
                "sha256": weights_sha256(Path(weights)) if Path(weights).is_file() else None,
            },
            version=ours,
        )
