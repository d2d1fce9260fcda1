"""Where the pipeline runs: in this process, or spread over a Ray cluster (vidsearch.distribute). Both take the same
call and yield the same results, so the ingester never knows which one the composition root chose."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from .config import Settings
from .errors import DecodeError
from .pipeline import DecodeWorkers, process_videos
from .records import ProcessedVideo

Results = Iterator[tuple[Path, ProcessedVideo | DecodeError]]


class Runner(Protocol):
    def process(
        self, paths: list[Path], fps: float, persons: bool, on_frames: Callable[[Path, int], None]
    ) -> Results: ...

    def close(self) -> None: ...


class LocalRunner:
    """The pipeline in this process, with the archive's loaded models and its decode worker for these settings
    (a new one boots on construction, so it starts while the models load)."""

    def __init__(self, settings: Settings, models, decoders: DecodeWorkers):
        self.settings = settings
        self.models = models
        self.decoding = decoders.get(settings.sampling)

    def process(self, paths: list[Path], fps: float, persons: bool, on_frames: Callable[[Path, int], None]) -> Results:
        detector = self.models.detector() if persons else None
        text_reader = self.models.text_reader() if self.settings.screen_text.enabled else None
        return process_videos(
            paths, self.settings, self.models.embedder(), detector, fps, on_frames, self.decoding,
            attributes=self.models.attribute_reader, text_reader=text_reader,
            face_model=self.models.face_model() if self.settings.faces.enabled else None,
            before_embedding=self.models.settle_precision,
        )

    def close(self) -> None:
        """Nothing to release: the decode worker serves the archive's next ingest, and the archive closes it."""
