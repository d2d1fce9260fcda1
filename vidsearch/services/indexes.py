"""The FAISS indexes, one per kind of vector: loaded and brought into agreement with the catalog, saved, grown,
built and rebuilt from the Parquet shards, and reported on. The index files are derived data: the catalog and the
shards are the record."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence

import numpy as np

from ..config import Settings
from ..errors import ArchiveError, ConfigError
from ..records import Kind
from ..reports import IndexReport
from ..shards import Shards
from ..store import Catalog
from .models import Models
from .writes import WriteGuard

log = logging.getLogger("vidsearch")

KINDS: tuple[Kind, ...] = ("frame", "person")


class Indexes:
    def __init__(self, settings: Settings, catalog: Catalog, shards: Shards, models: Models, writes: WriteGuard):
        self.settings = settings
        self.folder = settings.archive
        self.catalog = catalog
        self.shards = shards
        self.models = models
        self.writes = writes
        self._loaded: dict | None = None
        self._generation: int | None = None  # the catalog's generation the loaded indexes agree with
        self._unmarked: set[Kind] = set()  # reconciled while another holder of the lock (an ingest) saves them

    def path(self, kind: Kind):
        return self.folder / f"{kind}.faiss"

    def _meta(self):
        from ..index import IndexMeta

        identity = self.models.identity()
        return IndexMeta(self.settings.index.factory, identity.dim, identity.model, identity.weights)

    def load(self) -> dict[Kind, object]:
        """The indexes, brought into agreement with the catalog on first call, and again whenever another process
        (an ingest beside a server) has changed the catalog since: filtered searches read the catalog, so unfiltered
        ones must see what it holds too."""
        generation = self.catalog.generation()
        if self._loaded is not None and generation != self._generation:
            log.info("the catalog changed since the indexes were loaded: loading them again")
            self._loaded = None
        if self._loaded is None:
            from ..index import VectorIndex

            # taken before loading: a commit during it makes the next call load again, never miss it
            self._generation = generation
            meta = self._meta()
            self._loaded = {}
            reconciled = {}
            for kind in KINDS:
                path = self.path(kind)
                try:
                    index = VectorIndex(path, meta)
                except (RuntimeError, ValueError) as error:
                    log.warning("index %s is unreadable (%s); rebuilding it from the Parquet shards", path, error)
                    index = self._build(kind)
                if not self.in_sync(kind, index):
                    # taken first: a commit beside this one makes the saved mark disagree, not lie
                    reconciled[kind] = self.catalog.vector_fingerprint(kind)
                    self._reconcile(kind, index)
                self._loaded[kind] = index
            if reconciled:
                try:
                    with self.writes.writer():
                        self.save(reconciled)
                except ArchiveError:  # an ingest holds the lock, maybe this very one: its save marks them
                    self._unmarked.update(reconciled)
        return self._loaded

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

    def in_sync(self, kind: Kind, index) -> bool:
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

    def caught_up(self) -> None:
        """The one writer changed the catalog and changes the loaded indexes to match (add, remove): they are not
        to be loaded again for that."""
        if self._loaded is not None:
            self._generation = self.catalog.generation()

    def add(self, kind: Kind, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._loaded[kind].add(ids, vectors)

    def remove(self, ids: dict[Kind, np.ndarray]) -> None:
        """Drop vectors the catalog forgot; indexes not loaded yet drop them when they load and reconcile."""
        if self._loaded is not None:
            for kind, kind_ids in ids.items():
                self._loaded[kind].remove(kind_ids)

    def save(self, synced: dict | None = None) -> None:
        """Write the changed indexes and mark them in step with the catalog; `synced` gives the catalog state
        that indexes just reconciled were compared with (one found already whole is only marked). Indexes this
        process reconciled while the lock was held, by the ingest that now saves, are marked as of now."""
        synced = synced or {}
        with self.writes.writing("saving the index"):
            for kind, index in (self._loaded or {}).items():
                changed = index.dirty
                if changed:
                    index.save()
                if changed or kind in synced or kind in self._unmarked:
                    self._mark_in_sync(kind, synced.get(kind))
            self._unmarked.clear()

    def build(
        self, index_kind: str | None = None, memory_budget: int | None = None, vectors: Sequence[Kind] = KINDS
    ) -> dict[Kind, IndexReport]:
        """Build indexes anew from the Parquet shards, of `index_kind` or chosen for the size and budget."""
        with self.writes.writer(), self.writes.writing("building the index"):
            self.load()
            for kind in vectors:
                self._build(kind, index_kind, memory_budget)
            return {kind: self.report(kind) for kind in vectors}

    def rebuild(self) -> dict[Kind, IndexReport]:
        """Recreate every index from the Parquet shards, each of the kind it was, where that still fits its size."""
        from ..index import choose_index

        with self.writes.writer(), self.writes.writing("rebuilding the index"):
            for kind, index in self.load().items():
                try:
                    choose_index(index.size, index.meta.dim, kind=index.plan.kind)
                    self._build(kind, index.plan.kind)
                except ConfigError:  # too few vectors left to train that kind
                    self._build(kind)
            return {kind: self.report(kind) for kind in KINDS}

    def report(self, kind: Kind) -> IndexReport:
        index = self.load()[kind]
        measured = self.catalog.get_meta(f"index_recall:{kind}")
        recall = json.loads(measured) if measured else {}
        exact = index.plan.kind == "flat"
        return IndexReport(
            vectors=kind, info=index.info(), reason=index.plan.reason,
            recall_at_10=1.0 if exact else recall.get("recall@10"), recall_queries=recall.get("queries", 0),
        )

    def files(self) -> dict[Kind, dict]:
        """What `stats` shows of each index: its file, size and vectors, from the saved files alone."""
        files = {}
        for kind in KINDS:
            path = self.path(kind)
            meta_path = path.with_suffix(".json")
            saved = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            files[kind] = {
                "file": path.name, "bytes": path.stat().st_size if path.exists() else 0,
                "vectors": saved.get("vectors", 0), "factory": saved.get("factory", self.settings.index.factory),
            }
        return files

    def _build(self, kind: Kind, index_kind: str | None = None, memory_budget: int | None = None):
        from ..index import VectorIndex, choose_index
        from ..recall import RecallQueries, exact_neighbours, widen_to_recall

        meta = self._meta()
        fingerprint = self.catalog.vector_fingerprint(kind)
        wanted = np.sort(self.catalog.vector_ids(kind))
        plan = choose_index(len(wanted), meta.dim, memory_budget, index_kind)
        log.info("building the %s index: %s", kind, plan.reason)
        sample = self._sample_vectors(kind, wanted, plan.train_size) if plan.train_size else None
        index = VectorIndex.build(self.path(kind), meta, plan, self.vector_batches(kind, wanted), sample)
        self._mark_in_sync(kind, fingerprint)
        if self._loaded is not None:
            self._loaded[kind] = index
        if plan.kind != "flat":
            vectors, own_ids = self._recall_queries(kind, wanted)
            _, exact = exact_neighbours(vectors, self.vector_batches(kind, wanted), k=11)
            # widened on half of each group (texts, examples), measured on the other halves: the figure is not fitted
            halves = [RecallQueries(vectors[rows], exact[rows], own_ids[rows]).halves()
                      for rows in (own_ids < 0, own_ids >= 0)]
            widen_to_recall(index, [tuning for tuning, _ in halves])
            if index.dirty:
                index.save()
            held_out = [measuring for _, measuring in halves if len(measuring.vectors)]
            measured = {"recall@10": min(measuring.recall(index) for measuring in held_out),
                        "queries": sum(len(measuring.vectors) for measuring in held_out)}
            self.catalog.set_meta({f"index_recall:{kind}": json.dumps(measured)})
        return index

    def vector_batches(self, kind: Kind, wanted: np.ndarray | None = None, videos_per_batch: int = 64):
        """(ids, vectors) of one kind from the shards (those of `wanted` ids, or all), some videos at a time, so the
        archive never sits in memory."""
        wanted = np.sort(self.catalog.vector_ids(kind)) if wanted is None else wanted
        video_ids = [video.id for video in self.catalog.videos(status="indexed")] if len(wanted) else []
        for start in range(0, len(video_ids), videos_per_batch):
            stored = self.shards.read(video_ids[start : start + videos_per_batch])
            chosen = (stored.kinds == kind) & np.isin(stored.ids, wanted)
            yield stored.ids[chosen], stored.vectors[chosen]

    def _sample_vectors(self, kind: Kind, wanted: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
        """A uniform random sample of about `size` stored vectors, to train a quantizer on."""
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(wanted, size=min(size, len(wanted)), replace=False))
        parts = [vectors[np.isin(ids, chosen)] for ids, vectors in self.vector_batches(kind, wanted)]
        return np.concatenate(parts)

    def _recall_queries(self, kind: Kind, wanted: np.ndarray, stored: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """Real query vectors and, for each, the stored vector it is (-1 for none): the attribute vocabulary's
        phrasings as text queries, and stored vectors as queries by example (--like), held out of their own
        answers by recall_at_k."""
        prompts = [p for group in self.models.vocabulary().groups for label in group.labels for p in label.prompts]
        texts = self.models.text_encoder().embed_texts(prompts)
        own_ids = np.sort(np.random.default_rng(1).choice(wanted, size=min(stored, len(wanted)), replace=False))
        batches = list(self.vector_batches(kind, own_ids))
        example_ids = np.concatenate([ids for ids, _ in batches])
        queries = np.concatenate([texts, *(vectors for _, vectors in batches)]).astype(np.float32)
        return queries, np.concatenate([np.full(len(texts), -1, np.int64), example_ids])

    def grow(self) -> None:
        """Past the size where exact search is slow, or when a trained index has outgrown its lists, build the
        index chosen for the new size (the archive's budget is the default bytes per vector)."""
        from ..index import choose_index

        for kind, index in self.load().items():
            wanted = choose_index(index.size, index.meta.dim)
            if wanted.kind == "flat" or wanted.factory == index.plan.factory:
                continue
            if index.plan.kind == "flat" or _list_count(wanted.factory) >= 4 * _list_count(index.plan.factory):
                self._build(kind)


def _list_count(factory: str) -> int:
    """The number of inverted lists in an IVF factory string ("IVF4096,PQ64np" -> 4096)."""
    found = re.match(r"IVF(\d+)", factory)
    return int(found.group(1)) if found else 0
