"""Spread the processing of videos over a Ray cluster; the driver commits what comes back.

Each Ray worker process loads the models once and processes whole videos, returning their vectors and
records through Ray's object store, so the archive folder needs no shared file system: the driver writes
the Parquet shards, the catalog and the index, with the same commit as a local ingest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from .config import Settings, resolve_device
from .errors import ConfigError, DecodeError
from .pipeline import process_videos
from .records import ProcessedVideo

_worker_models: dict = {}  # per Ray worker process: settings -> (embedder, detector, attribute reader, text reader)


class RayRunner:
    """The pipeline on Ray workers (vidsearch.runners.Runner); `settings` name the archive's own model, so the
    workers load exactly that one."""

    def __init__(self, settings: Settings, address: str):
        self.settings = settings
        self.address = address

    def process(
        self, paths: list[Path], fps: float, persons: bool, on_frames: Callable[[Path, int], None]
    ) -> Iterator[tuple[Path, ProcessedVideo | DecodeError]]:
        return process_on_ray(paths, self.settings, fps, persons, self.address, on_frames)

    def close(self) -> None:
        pass  # the workers keep their models for the next call; Ray ends them with the driver


def process_on_ray(
    paths: list[Path],
    settings: Settings,
    fps: float,
    persons: bool,
    address: str,
    on_frames: Callable[[Path, int], None] = lambda path, n: None,
) -> Iterator[tuple[Path, ProcessedVideo | DecodeError]]:
    """Results in the order they finish; `address` is "local" (start Ray here), "auto" or a cluster address."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'vidsearch[ray]'") from None
    if not ray.is_initialized():
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    use_gpu = settings.device == "cuda" or (settings.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
    cpus = settings.distributed.cpus_per_task
    task = ray.remote(num_cpus=cpus, num_gpus=settings.distributed.gpus_per_task if use_gpu else 0)(_process_one)
    in_flight_limit = max(2, int(2 * ray.cluster_resources().get("CPU", cpus) // cpus))
    waiting = list(paths)
    pending: dict = {}
    while waiting or pending:
        while waiting and len(pending) < in_flight_limit:
            path = waiting.pop(0)
            pending[task.remote(path, settings, fps, persons)] = path
        [done], _ = ray.wait(list(pending), num_returns=1)
        path = pending.pop(done)
        result = ray.get(done)
        if isinstance(result, ProcessedVideo):
            on_frames(path, len(result.frames) + result.frames_skipped)
        yield path, result


def _process_one(path: Path, settings: Settings, fps: float, persons: bool) -> ProcessedVideo | DecodeError:
    from .attributes import AttributeReader
    from .detect import Detector
    from .embed import ClipEmbedder
    from .screen_text import TextReader
    from .things import every_family, family_vocabulary
    from .threads import use_cores

    use_cores(settings.distributed.cpus_per_task)
    # the families are a dict (unhashable): their JSON stands for them in the key
    families = json.dumps(settings.things.families, sort_keys=True)
    key = (settings.clip, settings.detector, families, settings.device, settings.search.attributes, persons,
           settings.screen_text)
    if key not in _worker_models:
        device = resolve_device(settings.device)
        settings = replace(settings, device=device)
        embedder = ClipEmbedder(settings.clip, device)
        detector, readers = None, {}
        if persons:  # appearances come only from detected things
            detector = Detector(settings.detector, device)
            for name, family in every_family(settings).items():
                vocabulary = family_vocabulary(family)
                readers[name] = vocabulary and AttributeReader(vocabulary, embedder)
        texts = TextReader(settings.screen_text) if settings.screen_text.enabled else None
        _worker_models[key] = (embedder, detector, readers, texts)
    embedder, detector, readers, texts = _worker_models[key]
    [(_, result)] = list(
        process_videos([path], settings, embedder, detector, fps, attributes=readers.get, text_reader=texts)
    )
    return result
