"""The Archive: the one object that users script and the CLI calls; it wires catalog, shards, indexes and models."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from .config import Settings, resolve_device
from .errors import ArchiveError, ConfigError, DecodeError, ModelMismatchError
from .events import (
    FramesDone, IngestEvent, IngestPlanned, VideoFailed, VideoIndexed, VideoSkipped,
)
from .pipeline import process_videos
from .records import Hit, Item, Kind, VideoFile
from .reports import ArchiveStats, EvalOutcome, IngestReport
from .scan import ScanProblem, content_fingerprint, scan
from .shards import Shards
from .store import Catalog

log = logging.getLogger("vidsearch")

KINDS: tuple[Kind, ...] = ("frame", "person")
SearchKind = Literal["all", "frame", "person"]


class Archive:
    """A folder holding the catalog (SQLite), the vectors (Parquet shards) and the FAISS indexes.

    Models load on first use and stay loaded; the indexes load on first search or ingest and are
    checked against the catalog, which is the record of what is indexed.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.folder = settings.archive
        self.folder.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.folder / "catalog.sqlite")
        self.catalog.ensure_schema()
        self.shards = Shards(self.folder / "shards")
        self.device = resolve_device(settings.device)
        self._embedder = None
        self._detector = None
        self._indexes = None

    @classmethod
    def open(cls, folder: str | Path, **options) -> Archive:
        """An archive folder with the defaults and the given options (clip_model, clip_pretrained, yolo_weights, device)."""
        from .config import load_settings

        return cls(load_settings(Path(folder), **options))

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- models ---------------------------------------------------------------------------------------

    def embedder(self):
        """The CLIP model: the one the archive was built with, unless the caller chose one."""
        if self._embedder is None:
            from .embed import ClipEmbedder

            stored = self.catalog.get_meta("clip")
            clip = self.settings.clip
            if stored and not self.settings.clip_chosen:
                spec = json.loads(stored)
                clip = replace(clip, model=spec["model"], pretrained=spec["pretrained"])
            self._embedder = ClipEmbedder(clip, self.device)
            self._check_identity(stored)
        return self._embedder

    def _check_identity(self, stored: str | None) -> None:
        if not stored:
            return
        spec = json.loads(stored)
        ours = self._embedder.identity
        if (spec["identity"]["model"], spec["identity"]["weights"]) != (ours.model, ours.weights):
            raise ModelMismatchError(
                f"this archive holds vectors of {spec['identity']['model']} ({spec['identity']['weights']}), "
                f"not of {ours.describe()}: query it with --clip-model {spec['model']}"
                + (f" --clip-pretrained {spec['pretrained']}" if spec["pretrained"] else "")
                + ", or ingest into a new --index folder to use another model"
            )

    def detector(self):
        if self._detector is None:
            from .detect import Detector

            self._detector = Detector(self.settings.detector, self.device)
        return self._detector

    # --- indexes --------------------------------------------------------------------------------------

    def indexes(self) -> dict[Kind, object]:
        """The FAISS indexes, brought into agreement with the catalog (the index files are derived data)."""
        if self._indexes is None:
            from .index import IndexMeta, VectorIndex

            identity = self.embedder().identity
            meta = IndexMeta(self.settings.index.factory, identity.dim, identity.model, identity.weights)
            self._indexes = {}
            for kind in KINDS:
                path = self.folder / f"{kind}.faiss"
                try:
                    index = VectorIndex(path, meta)
                except (RuntimeError, ValueError) as error:
                    log.warning("index %s is unreadable (%s); rebuilding it from the Parquet shards", path, error)
                    path.unlink()
                    index = VectorIndex(path, meta)
                self._reconcile(kind, index)
                self._indexes[kind] = index
            if any(index.dirty for index in self._indexes.values()):
                try:
                    with self._writer():
                        self.save_indexes()
                except ArchiveError:
                    pass  # an ingest is running and will save the index itself
        return self._indexes

    def _reconcile(self, kind: Kind, index) -> None:
        """Add what the catalog has and the index lacks (an ingest interrupted before its checkpoint), drop the rest."""
        wanted = self.catalog.vector_ids(kind)
        present = index.ids()
        extra = np.setdiff1d(present, wanted)
        missing = np.setdiff1d(wanted, present)
        index.remove(extra)
        if len(missing):
            vectors = self.shards.read(sorted(self.catalog.video_ids_of(kind, missing)))
            keep = np.isin(vectors.ids, missing)
            index.add(vectors.ids[keep], vectors.vectors[keep])
        if len(extra) or len(missing):
            log.info("%s index: added %d vectors from shards, removed %d", kind, len(missing), len(extra))

    def save_indexes(self) -> None:
        for index in (self._indexes or {}).values():
            if index.dirty:
                index.save()

    # --- ingest ---------------------------------------------------------------------------------------

    @contextmanager
    def _writer(self):
        """One writer at a time per archive; a second ingest is told, not queued behind a silent wait."""
        with open(self.folder / "ingest.lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ArchiveError(f"archive {self.folder} is busy: another ingest is writing to it") from None
            yield

    def ingest(
        self,
        paths: Iterable[Path],
        *,
        fps: float | None = None,
        persons: bool = True,
        sample: str | None = None,
        reader: str | None = None,
        ray_address: str | None = None,
        on_event: Callable[[IngestEvent], None] = lambda event: None,
    ) -> IngestReport:
        """Index new and changed videos under `paths`; unchanged ones are skipped, bad ones recorded as failed.

        `sample` is "time" (frames nearest to each 1/fps step) or "keyframes" (keyframes only, coarse and fast);
        `reader` is "pyav", "decord" or "auto". With `ray_address` ("local", "auto" or a cluster address)
        videos are processed on Ray workers.
        """
        fps = fps or self.settings.sampling.fps
        if fps <= 0:
            raise ConfigError(f"fps must be positive, not {fps}")
        sampling = replace(
            self.settings.sampling, mode=sample or self.settings.sampling.mode,
            reader=reader or self.settings.sampling.reader,
        )
        settings = replace(self.settings, sampling=sampling)
        started = time.perf_counter()
        report = IngestReport()
        with self._writer():
            found = list(scan(paths))
            on_event(IngestPlanned(videos=len(found)))
            embedder = self.embedder()
            detector = self.detector() if persons else None
            indexes = self.indexes()
            self.shards.sweep(keep={v.id for v in self.catalog.videos(status="indexed")})
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
            last_save = time.monotonic()
            def on_frames(path: Path, count: int) -> None:
                on_event(FramesDone(path, count))

            if ray_address:
                from .distribute import process_on_ray

                # workers load exactly the model this archive holds
                results = process_on_ray(
                    list(todo), replace(settings, clip=embedder.config), fps, persons, ray_address, on_frames
                )
            else:
                results = process_videos(todo, settings, embedder, detector, fps, on_frames)
            for path, result in results:
                video, fingerprint = todo[path]
                if isinstance(result, DecodeError):
                    self._fail(path, result.reason, report, on_event, video)
                    continue
                self._commit(video, fingerprint, fps, result, indexes)
                report.add(result)
                on_event(VideoIndexed(path, len(result.frames), len(result.persons), result.info.duration))
                if time.monotonic() - last_save > self.settings.index.checkpoint_seconds:
                    self.save_indexes()
                    last_save = time.monotonic()
            self.save_indexes()
        report.wall_seconds = time.perf_counter() - started
        return report

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

    def _commit(self, video: VideoFile, fingerprint: str, fps: float, result, indexes) -> None:
        old = self.catalog.video(video.path)
        old_ids = self.catalog.vector_ids_of_video(old.id) if old else {}
        if not self.catalog.get_meta("clip"):
            self._record_model()

        embedded_mask = np.array([p.embedded for p in result.persons], dtype=bool)
        embedded = [p for p in result.persons if p.embedded]

        def write_shard(video_id: int, frame_ids: np.ndarray, person_ids: np.ndarray) -> None:
            items = [
                Item(vector_id=int(i), kind="frame", frame_index=f.frame_index, t=f.t)
                for i, f in zip(frame_ids, result.frames)
            ] + [
                Item(
                    vector_id=int(i), kind="person", frame_index=result.frames[p.frame_position].frame_index,
                    t=result.frames[p.frame_position].t, box=p.detection.box, detector_score=p.detection.score,
                )
                for i, p in zip(person_ids[embedded_mask], embedded)
            ]
            vectors = np.concatenate([result.frame_vectors, result.person_vectors])
            self.shards.write(video_id, video.path, items, vectors)

        started = time.perf_counter()
        video_id, frame_ids, person_ids = self.catalog.replace_video(
            video, fingerprint, result.info, result.reader, fps, result.frames, result.frames_skipped, result.persons,
            before_commit=write_shard,
        )
        if old:
            # SQLite may give the new row the old id (it was the largest); vector ids are never reused
            self._drop_vectors(old.id, old_ids, keep_shard=old.id == video_id)
        indexes["frame"].add(frame_ids, result.frame_vectors)
        indexes["person"].add(person_ids[embedded_mask], result.person_vectors)
        result.seconds.write += time.perf_counter() - started

    def _drop_vectors(self, video_id: int, ids: dict[Kind, np.ndarray], keep_shard: bool = False) -> None:
        """After the catalog forgot a video: its vectors leave the indexes and its shard is deleted."""
        if self._indexes is not None:
            for kind, kind_ids in ids.items():
                self._indexes[kind].remove(kind_ids)
        if not keep_shard:
            self.shards.remove([video_id])

    def _record_model(self) -> None:
        config, identity = self._embedder.config, self._embedder.identity
        self.catalog.set_meta(
            {
                "clip": json.dumps(
                    {
                        "model": config.model,
                        "pretrained": config.pretrained,
                        "identity": {"model": identity.model, "weights": identity.weights, "dim": identity.dim},
                    }
                )
            }
        )

    def _fail(
        self, path: Path, reason: str, report: IngestReport, on_event, video: VideoFile | None = None
    ) -> None:
        old = self.catalog.video(path)
        old_ids = self.catalog.vector_ids_of_video(old.id) if old else {}
        self.catalog.record_failure(video or VideoFile(path=path, size=0, mtime_ns=0), reason)
        if old:
            self._drop_vectors(old.id, old_ids)
        report.failed.append((path, reason))
        on_event(VideoFailed(path, reason))

    def prune(self) -> list[Path]:
        """Forget videos whose files are gone; returns their paths."""
        with self._writer():
            gone = [v for v in self.catalog.videos() if not v.path.exists()]
            if any(video.status == "indexed" for video in gone):
                self.indexes()  # loaded before the catalog changes, so the vectors to drop are known to them
            for video in gone:
                ids = self.catalog.vector_ids_of_video(video.id)
                self.catalog.remove([video.id])
                self._drop_vectors(video.id, ids)
            self.save_indexes()
        return [v.path for v in gone]

    # --- search ---------------------------------------------------------------------------------------

    def query(self, text: str, k: int = 20, kind: SearchKind = "all") -> list[Hit]:
        """Ranked frames and persons for a description in plain words."""
        if not text.strip():
            raise ConfigError("the query text is empty")
        return self.search_vectors(self.embedder().embed_texts([text]), k, kind)[0]

    def query_image(self, path: Path, k: int = 20, kind: SearchKind = "all") -> list[Hit]:
        """Ranked frames and persons that look like a picture (a photo of a suspect, a screenshot)."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as picture:
                pixels = np.asarray(picture.convert("RGB"))
        # ImportError: ultralytics patches Image.open to try an optional HEIF plugin on files PIL cannot read
        except (OSError, UnidentifiedImageError, ImportError):
            raise ConfigError(f"{path}: not a readable image") from None
        return self.search_vectors(self.embedder().embed_images([pixels]), k, kind)[0]

    def query_like(self, hit_id: int, k: int = 20, kind: SearchKind = "all") -> list[Hit]:
        """More like an indexed frame or person (an `id` from query results), without that hit itself."""
        for each in KINDS:
            video_ids = self.catalog.video_ids_of(each, [hit_id])
            if video_ids:
                stored = self.shards.read(sorted(video_ids))
                vector = stored.vectors[stored.ids == hit_id][:1]
                hits = self.search_vectors(vector, k + 1, kind)[0]
                others = [hit for hit in hits if hit.item.vector_id != hit_id][:k]
                return [replace(hit, rank=rank) for rank, hit in enumerate(others, 1)]
        raise ConfigError(f"no hit with id {hit_id} in this archive")

    def search_vectors(self, vectors: np.ndarray, k: int = 20, kind: SearchKind = "all") -> list[list[Hit]]:
        """Ranked hits for each query vector (rows of `vectors`, normalized like the archive's)."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, not {k}")
        kinds = KINDS if kind == "all" else (kind,)
        indexes = self.indexes()
        per_query: list[list[tuple[float, Kind, int]]] = [[] for _ in range(len(vectors))]
        for each in kinds:
            scores, ids = indexes[each].search(vectors, k)
            for row, (row_scores, row_ids) in enumerate(zip(scores, ids)):
                per_query[row].extend((float(s), each, int(i)) for s, i in zip(row_scores, row_ids) if i >= 0)
        ranked = [sorted(candidates, key=lambda c: -c[0])[:k] for candidates in per_query]
        meaning = {
            each: self.catalog.items(each, [i for row in ranked for _, kd, i in row if kd == each]) for each in kinds
        }
        # an ingest running beside this reader may have replaced a video since the index was loaded
        present = [[(score, kd, i) for score, kd, i in row if i in meaning[kd]] for row in ranked]
        return [
            [
                Hit(rank=rank, score=score, item=meaning[kd][i][0], video=meaning[kd][i][1])
                for rank, (score, kd, i) in enumerate(row, 1)
            ]
            for row in present
        ]

    # --- reports --------------------------------------------------------------------------------------

    def stats(self) -> ArchiveStats:
        counts = self.catalog.counts()
        stored = self.catalog.get_meta("clip")
        index = {}
        for kind in KINDS:
            path = self.folder / f"{kind}.faiss"
            meta_path = path.with_suffix(".json")
            saved = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            index[kind] = {
                "file": path.name, "bytes": path.stat().st_size if path.exists() else 0,
                "vectors": saved.get("vectors", 0), "factory": saved.get("factory", self.settings.index.factory),
            }
        return ArchiveStats(
            folder=self.folder, videos=counts["videos"], frames=counts["frames"], persons=counts["persons"],
            video_seconds=counts["video_seconds"],
            failed=[(v.path, v.error or "") for v in self.catalog.videos(status="failed")],
            model=json.loads(stored) if stored else None, index=index,
        )

    def evaluate(self, manifests: Sequence[Path], root: Path, k: int = 10) -> list[EvalOutcome]:
        """Retrieval quality on labeled query sets; videos a set names that the archive lacks are listed."""
        from .evaluate import evaluate, load_manifest

        loaded = [load_manifest(Path(m)) for m in manifests]
        indexed = [v.path for v in self.catalog.videos(status="indexed")]
        root = Path(os.path.abspath(root))
        outcomes = []
        for manifest in loaded:
            texts = sorted({q.text for q in manifest.queries})
            vectors = dict(zip(texts, self.embedder().embed_texts(texts)))
            report = evaluate(
                manifest, lambda text, kind, n: self.search_vectors(vectors[text][None], n, kind)[0], k
            )
            named = sorted({r.video for q in manifest.queries for r in q.relevant})
            not_indexed = tuple(v for v in named if (root / v) not in indexed)
            outcomes.append(EvalOutcome(report=report, not_indexed=not_indexed))
        return outcomes


def upgrade_archive(folder: Path) -> tuple[str | None, str]:
    """Bring an archive's catalog to this version's schema; returns the revisions before and after."""
    from .store import head_revision

    path = Path(folder) / "catalog.sqlite"
    if not path.exists():
        raise ArchiveError(f"no archive at {folder}")
    catalog = Catalog(path)
    try:
        before = catalog.revision()
        catalog.upgrade()
        return before, head_revision()
    finally:
        catalog.close()


