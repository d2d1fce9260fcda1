"""The Archive: the one object that users script and the CLI calls; it wires catalog, shards, indexes and models."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import replace
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from .config import Settings, resolve_device
from .errors import ArchiveError, ConfigError, DecodeError, ModelMismatchError
from .events import (
    FramesDone, IngestEvent, IngestPlanned, VideoFailed, VideoIndexed, VideoSkipped,
)
from .export import ExportReport, PlayableVideo
from .pipeline import decode_worker, process_videos
from .records import Hit, Item, Kind, VideoFile
from .reports import ArchiveStats, Description, EvalOutcome, IndexReport, IngestReport
from .scan import ScanProblem, content_fingerprint, scan
from .search import EVERYTHING, SearchFilter, best_per_appearance, merge_moments, parse_query, ranked
from .shards import Shards
from .store import Catalog
from .track import summarize_tracks

log = logging.getLogger("vidsearch")

KINDS: tuple[Kind, ...] = ("frame", "person")
_INDEX_SAVE_WAIT_S = 3.0  # longer than a query takes to save an index it repaired
SearchKind = Literal["all", "frame", "person"]
# the milliseconds of the query running in this thread, when its caller asked for them (Archive.query's `timings`)
_query_timings: ContextVar[dict[str, float] | None] = ContextVar("query_timings", default=None)


@contextmanager
def _timed(step: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        timings = _query_timings.get()
        if timings is not None:
            timings[step] = timings.get(step, 0.0) + (time.perf_counter() - started) * 1000


class Archive:
    """A folder holding the catalog (SQLite), the vectors (Parquet shards) and the FAISS indexes.

    Models load on first use and stay loaded; the indexes load on first search or ingest and are
    checked against the catalog, which is the record of what is indexed.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.folder = settings.archive
        with self._writing(f"opening the archive {self.folder}"):
            self.folder.mkdir(parents=True, exist_ok=True)
            self.catalog = Catalog(self.folder / "catalog.sqlite")
            self.catalog.ensure_schema()
            self.shards = Shards(self.folder / "shards")
        self._embedder = None
        self._text_encoder = None
        self._detector = None
        self._vocabulary = None
        self._attribute_reader = None
        self._indexes = None

    @classmethod
    def open(cls, folder: str | Path, **options) -> Archive:
        """An archive folder with the defaults and the given options (clip_model, clip_pretrained, yolo_weights, device)."""
        from .config import load_settings

        return cls(load_settings(Path(folder), **options))

    def close(self) -> None:
        self.catalog.close()
        if self._text_encoder is not None:
            self._text_encoder.close()

    @cached_property
    def device(self) -> str:
        # resolved on first model use: "auto" asks torch for a GPU, and a text query needs no torch at all
        return resolve_device(self.settings.device)

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
            self._embedder = ClipEmbedder(clip, self.device, export_text_tower=True)
            self._check_identity(stored)
        return self._embedder

    def text_encoder(self):
        """Query texts to vectors: the text tower of the archive's model, exported to ONNX at ingest, which needs
        neither torch nor the weights file (vidsearch.text_encoder); texts asked before come from a cache."""
        if self._text_encoder is None:
            from .text_encoder import query_encoder

            stored = self.catalog.get_meta("clip")
            chosen = self.settings.clip if self.settings.clip_chosen else None
            self._text_encoder = query_encoder(json.loads(stored) if stored else None, chosen, self.embedder)
        return self._text_encoder

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

    def vocabulary(self):
        """The attribute vocabulary: what is asked of every person, and how queries name the answers."""
        if self._vocabulary is None:
            from .attributes import load_vocabulary

            path = self.settings.search.attributes
            self._vocabulary = load_vocabulary(Path(path) if path else None)
        return self._vocabulary

    def attribute_reader(self):
        if self._attribute_reader is None:
            from .attributes import AttributeReader

            self._attribute_reader = AttributeReader(self.vocabulary(), self.embedder())
        return self._attribute_reader

    # --- indexes --------------------------------------------------------------------------------------

    def _index_meta(self):
        from .index import IndexMeta

        identity = (self._embedder or self.text_encoder()).identity
        return IndexMeta(self.settings.index.factory, identity.dim, identity.model, identity.weights)

    def indexes(self) -> dict[Kind, object]:
        """The FAISS indexes, brought into agreement with the catalog (the index files are derived data)."""
        if self._indexes is None:
            from .index import VectorIndex

            meta = self._index_meta()
            self._indexes = {}
            reconciled = {}
            for kind in KINDS:
                path = self.folder / f"{kind}.faiss"
                try:
                    index = VectorIndex(path, meta)
                except (RuntimeError, ValueError) as error:
                    log.warning("index %s is unreadable (%s); rebuilding it from the Parquet shards", path, error)
                    index = self._build_index(kind)
                if not self._in_sync(kind, index):
                    # taken first: a commit beside this one makes the saved mark disagree, not lie
                    reconciled[kind] = self.catalog.vector_fingerprint(kind)
                    self._reconcile(kind, index)
                self._indexes[kind] = index
            if reconciled:
                try:
                    with self._writer():
                        self.save_indexes(reconciled)
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

    def _in_sync(self, kind: Kind, index) -> bool:
        """Whether the index was saved holding exactly the catalog's vectors: then opening skips comparing
        every id (seconds at a million vectors)."""
        saved = self.catalog.get_meta(f"index_synced:{kind}")
        current = self.catalog.vector_fingerprint(kind)
        return saved is not None and json.loads(saved) == current and index.size == current[0]

    def _mark_in_sync(self, kind: Kind, fingerprint: list[int] | None = None) -> None:
        """After the index file is written: it holds the catalog's vectors as of `fingerprint` (default: now,
        which the one writer may say, since nobody else changes the catalog under it)."""
        fingerprint = fingerprint or self.catalog.vector_fingerprint(kind)
        self.catalog.set_meta({f"index_synced:{kind}": json.dumps(fingerprint)})

    def save_indexes(self, synced: dict | None = None) -> None:
        """Write the changed indexes and mark them in step with the catalog; `synced` gives the catalog state
        that indexes just reconciled were compared with (one found already whole is only marked)."""
        synced = synced or {}
        with self._writing("saving the index"):
            for kind, index in (self._indexes or {}).items():
                changed = index.dirty
                if changed:
                    index.save()
                if changed or kind in synced:
                    self._mark_in_sync(kind, synced.get(kind))

    def build_index(
        self, index_kind: str | None = None, memory_budget: int | None = None, vectors: Sequence[Kind] = KINDS
    ) -> dict[Kind, IndexReport]:
        """Build the frame and/or person index anew from the Parquet shards: `index_kind` ("flat", "ivf-pq",
        "ivf-sq8") or chosen for the number of vectors and the memory budget (bytes); each report carries the
        recall@10 measured against exact search."""
        with self._writer(), self._writing("building the index"):
            self.indexes()
            for kind in vectors:
                self._build_index(kind, index_kind, memory_budget)
            return {kind: self.index_report(kind) for kind in vectors}

    def rebuild_index(self) -> dict[Kind, IndexReport]:
        """Recreate every index from the Parquet shards, each of the kind it was, where that still fits its size."""
        from .index import choose_index

        with self._writer(), self._writing("rebuilding the index"):
            indexes = self.indexes()
            for kind, index in indexes.items():
                try:
                    choose_index(index.size, index.meta.dim, kind=index.plan.kind)
                    self._build_index(kind, index.plan.kind)
                except ConfigError:  # too few vectors left to train that kind
                    self._build_index(kind)
            return {kind: self.index_report(kind) for kind in KINDS}

    def index_report(self, kind: Kind) -> IndexReport:
        index = self.indexes()[kind]
        measured = self.catalog.get_meta(f"index_recall:{kind}")
        recall = json.loads(measured) if measured else {}
        exact = index.plan.kind == "flat"
        return IndexReport(
            vectors=kind, info=index.info(), reason=index.plan.reason,
            recall_at_10=1.0 if exact else recall.get("recall@10"), recall_queries=recall.get("queries", 0),
        )

    def _build_index(self, kind: Kind, index_kind: str | None = None, memory_budget: int | None = None):
        from .index import VectorIndex, choose_index, exact_neighbours, recall_at_k

        meta = self._index_meta()
        fingerprint = self.catalog.vector_fingerprint(kind)
        wanted = np.sort(self.catalog.vector_ids(kind))
        plan = choose_index(len(wanted), meta.dim, memory_budget, index_kind)
        log.info("building the %s index: %s", kind, plan.reason)
        sample = self._sample_vectors(kind, wanted, plan.train_size) if plan.train_size else None
        index = VectorIndex.build(
            self.folder / f"{kind}.faiss", meta, plan, self._vector_batches(kind, wanted), sample
        )
        self._mark_in_sync(kind, fingerprint)
        if self._indexes is not None:
            self._indexes[kind] = index
        if plan.kind != "flat":
            queries = self._recall_queries(kind, wanted)
            _, exact = exact_neighbours(queries, self._vector_batches(kind, wanted), k=10)
            recall = recall_at_k(index, queries, exact, k=10)
            self.catalog.set_meta({f"index_recall:{kind}": json.dumps({"recall@10": recall, "queries": len(queries)})})
        return index

    def _vector_batches(self, kind: Kind, wanted: np.ndarray, videos_per_batch: int = 64):
        """(ids, vectors) of one kind from the shards, some videos at a time, so the archive never sits in memory."""
        video_ids = [video.id for video in self.catalog.videos(status="indexed")] if len(wanted) else []
        for start in range(0, len(video_ids), videos_per_batch):
            stored = self.shards.read(video_ids[start : start + videos_per_batch])
            chosen = (stored.kinds == kind) & np.isin(stored.ids, wanted)
            yield stored.ids[chosen], stored.vectors[chosen]

    def _sample_vectors(self, kind: Kind, wanted: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
        """A uniform random sample of about `size` stored vectors, to train a quantizer on."""
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(wanted, size=min(size, len(wanted)), replace=False))
        parts = [vectors[np.isin(ids, chosen)] for ids, vectors in self._vector_batches(kind, wanted)]
        return np.concatenate(parts)

    def _recall_queries(self, kind: Kind, wanted: np.ndarray, stored: int = 100) -> np.ndarray:
        """Real query vectors: the attribute vocabulary's phrasings as text queries, and stored vectors as
        queries by example (--like)."""
        prompts = [p for group in self.vocabulary().groups for label in group.labels for p in label.prompts]
        texts = self.text_encoder().embed_texts(prompts)
        examples = self._sample_vectors(kind, wanted, stored, seed=1)
        return np.concatenate([texts, examples]).astype(np.float32)

    def _grow_indexes(self) -> None:
        """Past the size where exact search is slow, or when a trained index has outgrown its lists, build the
        index chosen for the new size (the archive's budget is the default bytes per vector)."""
        from .index import choose_index

        for kind, index in self.indexes().items():
            wanted = choose_index(index.size, index.meta.dim)
            if wanted.kind == "flat" or wanted.factory == index.plan.factory:
                continue
            if index.plan.kind == "flat" or _list_count(wanted.factory) >= 4 * _list_count(index.plan.factory):
                self._build_index(kind)

    # --- ingest ---------------------------------------------------------------------------------------

    @contextmanager
    def _writer(self, wait_s: float = 0.0):
        """One writer at a time per archive; a second ingest is told, not queued behind a silent wait.

        A query that repaired the index saves it under this lock too, for a moment: an ingest waits `wait_s`
        for that rather than fail beside it.
        """
        with open(self.folder / "ingest.lock", "a+") as lock:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ArchiveError(f"archive {self.folder} is busy: another ingest is writing to it") from None
                    time.sleep(0.05)
            yield

    @contextmanager
    def _writing(self, what: str):
        """A write that fails (disk full, file too large, I/O error) stops with one line saying what failed;
        every video committed before it stays, and the same command resumes once there is room."""
        from sqlalchemy.exc import OperationalError

        try:
            yield
        # RuntimeError: faiss reports a failed write as one, with the system's reason in parentheses at the end
        except (OSError, OperationalError, RuntimeError) as error:
            raise ArchiveError(
                f"{what} failed: {_write_failure(error)}; what was committed before is kept, "
                "and the same command resumes once this is fixed"
            ) from error

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
        # the decoder process boots while the models load (Ray workers start their own)
        with self._writer(wait_s=_INDEX_SAVE_WAIT_S), (
            nullcontext() if ray_address else decode_worker(sampling)
        ) as decoding:
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
                results = process_videos(todo, settings, embedder, detector, fps, on_frames, decoding)
            with closing(results):  # on an error, decoding stops before its process does
                for path, result in results:
                    video, fingerprint = todo[path]
                    if isinstance(result, DecodeError):
                        self._fail(path, result.reason, report, on_event, video)
                        continue
                    with self._writing(f"indexing {path}"):
                        self._commit(video, fingerprint, fps, result, indexes)
                    report.add(result)
                    on_event(VideoIndexed(path, len(result.frames), len(result.persons), result.info.duration))
                    if time.monotonic() - last_save > self.settings.index.checkpoint_seconds:
                        self.save_indexes()
                        last_save = time.monotonic()
            self.save_indexes()
            self._grow_indexes()
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
        appearances = summarize_tracks(result.frames, result.persons, result.person_vectors)
        if appearances:
            read = self.attribute_reader().read(np.stack([a.pooled for a in appearances]))
            appearances = [replace(a, attributes=attributes) for a, attributes in zip(appearances, read)]
        video_id, frame_ids, person_ids = self.catalog.replace_video(
            video, fingerprint, result.info, result.reader, fps, result.frames, result.frames_skipped, result.persons,
            appearances, result.objects, before_commit=write_shard,
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
        with self._writing(f"recording the failure of {path}"):
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

    def query(
        self, text: str, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING, timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """Ranked moments and person appearances for a description in plain words.

        `-word` or `-"some words"` in the text, and phrases in `exclude`, push their matches down; attributes
        the text names ("red jacket", "glasses") add each person's probability for them to its score, as evidence.
        With `group=False`, every matching frame and crop is its own hit. `where` limits hits to some videos,
        a time range, a minimum score.

        `timings`, where given, receives milliseconds: model_load_ms (the text encoder, on a process's first
        query of a new text), encode_ms, index_load_ms (on the first search), search_ms (FAISS), fetch_ms (the
        hits' meaning from the catalog) and total_ms.
        """
        started, token = time.perf_counter(), _query_timings.set(timings)
        if timings is not None:
            timings.update(dict.fromkeys(("model_load_ms", "encode_ms", "index_load_ms", "search_ms", "fetch_ms"), 0.0))
        try:
            parsed = parse_query(text, exclude)
            if not parsed.text:
                raise ConfigError("the query text is empty")
            encoder = self.text_encoder()
            loaded = encoder.load_seconds
            with _timed("encode_ms"):
                vector = self._excluding(encoder.embed_texts([parsed.text]), parsed.excluded)
            mentions = self.vocabulary().mentions(parsed.text)
            hits = self.search_vectors(vector, k, kind, group, mentions, where=where)[0]
        finally:
            _query_timings.reset(token)
        if timings is not None:
            timings["model_load_ms"] = (encoder.load_seconds - loaded) * 1000
            timings["encode_ms"] -= timings["model_load_ms"]
            timings["total_ms"] = (time.perf_counter() - started) * 1000
        return hits

    def query_image(
        self, path: Path, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING,
    ) -> list[Hit]:
        """Ranked moments and persons that look like a picture (a photo of a suspect, a screenshot)."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as picture:
                pixels = np.asarray(picture.convert("RGB"))
        # ImportError: ultralytics patches Image.open to try an optional HEIF plugin on files PIL cannot read
        except (OSError, UnidentifiedImageError, ImportError):
            raise ConfigError(f"{path}: not a readable image") from None
        vector = self.embedder().embed_images([pixels])
        return self.search_vectors(self._excluding(vector, exclude), k, kind, group, where=where)[0]

    def query_like(
        self, hit_id: int, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING,
    ) -> list[Hit]:
        """More like an indexed frame or person (an `id` from query results), leaving out the moment or
        appearance the example belongs to: for a person, where else they appear."""
        example = self.describe(hit_id)
        appearance = example.appearance
        stored = self.shards.read(sorted(self.catalog.video_ids_of(example.item.kind, [hit_id])))
        vector = stored.vectors[stored.ids == hit_id][:1]
        if not len(vector) and appearance is not None:
            # a person whose own crop was not embedded: the track it belongs to stands for it
            pooled = self.catalog.pooled_vector(appearance.id)
            vector = pooled[None] if pooled is not None else vector
        if not len(vector):
            raise ConfigError(f"hit {hit_id} has no vector to compare with")

        def elsewhere(hit: Hit) -> bool:
            if hit.item.vector_id == hit_id or (appearance and hit.appearance == appearance.id):
                return False
            t = example.item.t
            return not (hit.video == example.video and hit.span and hit.span[0] <= t <= hit.span[1])

        vector = self._excluding(vector, exclude)
        return self.search_vectors(vector, k + 1, kind, group, keep=elsewhere, where=where)[0][:k]

    def calibrated_min_score(self) -> float | None:
        """The score below which this archive's model shows noise rather than matches, where it has been
        measured (scripts/eval_real_model.md says how); None for a model nobody has calibrated."""
        stored = self.catalog.get_meta("clip")
        if not stored:
            return None
        spec = json.loads(stored)
        return self.settings.search.min_score.get(f"{spec['model']}/{spec['pretrained']}")

    def describe(self, hit_id: int) -> Description:
        """What the archive knows of a hit: where and when, and for a person, their appearance and attributes."""
        for each in KINDS:
            found = self.catalog.items(each, [hit_id])
            if found:
                item, video = found[hit_id]
                appearance = self.catalog.appearances_of([hit_id]).get(hit_id) if each == "person" else None
                return Description(item=item, video=video, appearance=appearance)
        raise ConfigError(f"no hit with id {hit_id} in this archive")

    def _excluding(self, vectors: np.ndarray, phrases: Sequence[str]) -> np.ndarray:
        """Scores become similarity to the query minus a share of the similarity to each excluded phrase
        (the inner product is linear, so one search with the difference vector does it)."""
        if not phrases:
            return vectors
        excluded = self.text_encoder().embed_texts(list(phrases)).sum(axis=0)
        return vectors - self.settings.search.exclude_weight * excluded

    def search_vectors(
        self, vectors: np.ndarray, k: int = 20, kind: SearchKind = "all", group: bool = True,
        mentions: Sequence = (), keep=lambda hit: True, where: SearchFilter = EVERYTHING,
    ) -> list[list[Hit]]:
        """Ranked hits for each query vector (rows of `vectors`, in the archive's embedding space).

        With `group`, frame hits close in time merge into moments and person hits into appearances; the
        index is asked for more candidates until k groups are found or the index has no more. A filter
        that names few vectors (some videos, a time range) is searched exactly over just those, read from
        their videos' shards; a broad one filters the index's candidates.
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, not {k}")
        kinds = KINDS if kind == "all" else (kind,)
        with _timed("index_load_ms"):
            indexes = self.indexes()
        subsets = {each: self._subset(each, where) for each in kinds}
        results = []
        for vector in vectors:
            hits = [
                hit
                for each in kinds
                for hit in self._search_kind(indexes[each], subsets[each], each, vector, k, group, mentions, keep, where)
            ]
            results.append(ranked(hits)[:k])
        return results

    def _subset(self, kind: Kind, where: SearchFilter) -> np.ndarray | None:
        """The vector ids a narrowing filter admits; None when it admits everything."""
        if not where.narrows:
            return None
        with _timed("fetch_ms"):
            videos = [v.id for v in self.catalog.videos(status="indexed") if where.matches_video(v.path)]
            return self.catalog.vector_ids_within(kind, videos, where.start, where.end, where.objects)

    def _candidates(self, index, subset: np.ndarray | None, kind: Kind, vector: np.ndarray, fetch: int):
        """(score, id) best first, and whether nothing more is left to fetch. A subset few enough is scored
        exactly; a large one filters the index's candidates."""
        with _timed("search_ms"):
            if subset is None or len(subset) > self.settings.search.exact_below:
                scores, ids = index.search(vector[None], fetch)
                admitted = ids[0] >= 0 if subset is None else np.isin(ids[0], subset)
                found = [(float(s), int(i)) for s, i in zip(scores[0][admitted], ids[0][admitted])]
                # padding (-1) means the index gave all it can reach: a trained one searches only some lists
                return found, fetch >= index.size or bool((ids[0] < 0).any())
            if not len(subset):
                return [], True
            stored = self.shards.read(sorted(self.catalog.video_ids_of(kind, subset)))
            chosen = np.isin(stored.ids, subset)
            scores = stored.vectors[chosen] @ vector.astype(np.float32)
            order = np.argsort(-scores)[:fetch]
            return [(float(scores[i]), int(stored.ids[chosen][i])) for i in order], fetch >= len(subset)

    def _search_kind(
        self, index, subset, kind: Kind, vector: np.ndarray, k: int, group: bool, mentions, keep, where
    ) -> list[Hit]:
        fetch = k * self.settings.search.overfetch if group else k
        while True:
            candidates, exhausted = self._candidates(index, subset, kind, vector, fetch)
            with _timed("fetch_ms"):
                meaning = self.catalog.items(kind, [i for _, i in candidates])
            # an ingest running beside this reader may have replaced a video since the index was loaded
            hits = [
                hit
                for score, i in candidates if i in meaning
                if where.admits(hit := Hit(rank=0, score=score, item=meaning[i][0], video=meaning[i][1]))
            ]
            if group and kind == "frame":
                hits = merge_moments(hits, self.settings.search.moment_gap_s)
            elif group:
                with _timed("fetch_ms"):
                    appearance_of = self.catalog.appearances_of([hit.item.vector_id for hit in hits])
                hits = best_per_appearance(hits, appearance_of, mentions, self.settings.search.attribute_weight)
            hits = ranked(hits, keep)
            below = where.min_score is not None and candidates and candidates[-1][0] < where.min_score
            if len(hits) >= k or exhausted or below:
                return hits[:k]
            fetch *= 4

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
            appearances=counts["appearances"], video_seconds=counts["video_seconds"],
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
            vectors = dict(zip(texts, self.text_encoder().embed_texts(texts)))

            # a query's target search is one of the three modes below: each search runs once
            @cache
            def search(text: str, kind: SearchKind, n: int) -> list[Hit]:
                return self.search_vectors(vectors[text][None], n, kind, mentions=self.vocabulary().mentions(text))[0]

            report = evaluate(manifest, search, k)
            # the same queries against frames alone, persons alone, and both ranked together
            modes = {
                mode: evaluate(manifest, lambda text, _, n, kind=kind: search(text, kind, n), k)
                for mode, kind in (("frames", "frame"), ("persons", "person"), ("fused", "all"))
            }
            named = sorted({r.video for q in manifest.queries for r in q.relevant})
            not_indexed = tuple(v for v in named if (root / v) not in indexed)
            outcomes.append(EvalOutcome(report=report, modes=modes, not_indexed=not_indexed))
        return outcomes

    # --- hits' pictures, playable video and export (the export command and the web page) ------------------

    def export(
        self, hits: Sequence[Hit | int], out: Path, *, pad: float = 3.0, query: str | dict | None = None
    ) -> ExportReport:
        """Export hits from a search, or ids from earlier results, into `out` (see vidsearch.export).

        A hit's clip covers its span (a moment's or an appearance's start and end) or its instant, +-pad
        seconds. An unknown id, or a source file that is gone or has changed since it was indexed, becomes one
        line in the report's problems; the rest is exported.
        """
        from .export import ExportTarget, export_hits

        if pad < 0:
            raise ConfigError(f"pad must be 0 or more seconds, not {pad}")
        targets, problems = [], []
        for hit in hits:
            try:
                found = self.describe(int(hit)) if isinstance(hit, (int, np.integer)) else hit
            except ConfigError as error:
                problems.append(str(error))
                continue
            target = ExportTarget(found.item, found.video, found.to_json())
            problem = self._source_problem(found.video)
            if problem:
                problems.append(f"hit {found.item.vector_id} ({found.video}): {problem}")
                continue
            targets.append(replace(target, neighbours=self._persons_in_frame(found.item, found.video)))
        report = export_hits(targets, Path(out), self._provenance(query), pad=pad, crop=self.settings.crop)
        report.problems[:0] = problems
        return report

    def thumbnail(self, hit_id: int) -> Path:
        """A small JPG of a hit (a person's crop, or the whole frame), made on first call and kept in thumbs/."""
        from .thumbnails import crop_pixels, grab_frame, save_jpeg, thumbnail

        path = self.folder / "thumbs" / f"{hit_id}.jpg"  # vector ids are never reused: the file stays right
        if not path.exists():
            found = self.describe(hit_id)
            image = grab_frame(found.video, found.item.t)
            if found.item.box is not None:
                image = crop_pixels(image, found.item.box, self.settings.crop)
            save_jpeg(thumbnail(image), path, quality=85)
        return path

    def frame_picture(self, hit_id: int) -> Path:
        """The hit's whole frame as a JPG, made on first call and kept in frames/."""
        from .thumbnails import grab_frame, save_jpeg

        path = self.folder / "frames" / f"{hit_id}.jpg"
        if not path.exists():
            found = self.describe(hit_id)
            save_jpeg(grab_frame(found.video, found.item.t), path, quality=90)
        return path

    def playable_video(self, hit_id: int, pad: float = 10.0) -> PlayableVideo:
        """The hit's video as a browser plays it: the source file where browsers play its codec, else an H.264
        clip of +-pad seconds around the hit, cut on first call and kept in clips/."""
        from .export import PlayableVideo, browser_playable, cut_clip

        found = self.describe(hit_id)
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

        from .embed import weights_sha256
        from .export import Provenance

        weights = self.settings.detector.weights
        stored = self.catalog.get_meta("clip")
        try:
            ours = version("vidsearch")
        except PackageNotFoundError:
            ours = "unknown"
        return Provenance(
            query=query,
            model=json.loads(stored) if stored else None,
            detector={
                "weights": weights,
                "sha256": weights_sha256(Path(weights)) if Path(weights).is_file() else None,
            },
            version=ours,
        )


def _list_count(factory: str) -> int:
    """The number of inverted lists in an IVF factory string ("IVF4096,PQ64np" -> 4096)."""
    import re

    found = re.match(r"IVF(\d+)", factory)
    return int(found.group(1)) if found else 0


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


def _write_failure(error: Exception) -> str:
    """The system's reason for a failed write, in a few words."""
    import re

    if isinstance(error, OSError):
        reason = os.strerror(error.errno) if error.errno else str(error)
        return f"{reason} ({error.filename})" if error.filename else reason
    orig = getattr(error, "orig", None)  # SQLAlchemy's wrapper around the sqlite3 error
    if orig is not None:
        return f"catalog: {orig}"
    last = re.search(r"\(([^()]+)\)\s*$", str(error))
    return last.group(1) if last else str(error).splitlines()[0]
