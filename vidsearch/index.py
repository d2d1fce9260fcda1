"""FAISS inner-product indexes keyed by catalog ids: exact while small, trained (IVF) with exact re-ranking when large.

A trained index keeps compressed codes in RAM and asks them for a shortlist; the shortlist is re-scored exactly
against float16 copies of the vectors kept on disk beside the index (rows sorted by id, read through memory maps:
they cost page cache, not heap). `choose_index` picks the kind for a vector count and memory budget; the choice,
its search parameters and the build's timing are written to `<index>.json` and restored on reopening.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .crashpoints import crash_point
from .errors import ConfigError
from .rerank import ID_BYTES, RerankStore, RerankWriter, rerank_paths

FLAT_FACTORY = "IDMap2,Flat"
KINDS = ("flat", "ivf-pq", "ivf-sq8")
# Exact search reads every float32 vector per query: at 100 k vectors (200 MB) one query takes 15-30 ms on one core.
# Above, a trained index answers in ~1 ms at recall@10 >= 0.96 (scripts/bench_index.py).
FLAT_MAX_VECTORS = 100_000
# Resident bytes per vector a trained index may use when no budget is given: PQ64 for 512 dims, 10 M in ~0.8 GB.
DEFAULT_BYTES_PER_VECTOR = 128
# Coarse quantizers this large are searched (and trained) through an HNSW graph instead of a scan of every centroid.
HNSW_QUANTIZER_MIN_LISTS = 16384
HNSW_QUANTIZER_M = 32
# Measured on CLIP-like vectors (scripts/bench_index.py). Visiting 1/64 of the lists (at least 64) keeps the exact
# neighbours within reach: at 100 k, nprobe 16 caps recall@10 at 0.91. What limits recall is the shortlist: PQ
# scores blur near-ties, and more vectors crowd around a query as the archive grows. IVF4096,PQ64 at 1 M reaches
# 0.92 re-ranking 10 * k candidates and 0.98 re-ranking 20 * k; IVF16384,PQ64 at 10 M needs 80 * k for 0.95.
NPROBE_SHARE = 64
MIN_NPROBE = 64
RERANK_FACTOR_AT_1M = 20
RERANK_GROWTH = 0.6  # the shortlist grows 4x for 10x the vectors
# Text queries sit apart from the images (CLIP's modality gap), so the HNSW quantizer must search wider to find
# their nearest lists: at 10 M and nprobe 256, efSearch 512 rather than 256 lifts text recall@10 from 0.90 to 0.92.
QUANTIZER_EF_PER_PROBE = 2
ADD_QUANTIZER_EF = 32  # an HNSW coarse quantizer finds the one nearest list of an added vector with a short search
TRAIN_POINTS_PER_LIST = 40  # k-means wants >= 39 points per centroid; more buys little and costs linear time
PQ_TRAIN_POINTS = 256 * 40  # 256 centroids per sub-quantizer


@dataclass(frozen=True, slots=True)
class IndexMeta:
    """Written beside the index so that a query never searches vectors of another embedder."""

    factory: str
    dim: int
    model: str
    weights: str

    def to_json(self) -> dict:
        return {"factory": self.factory, "dim": self.dim, "model": self.model, "weights": self.weights}


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """Which index to build for a vector count, how to search it, and why."""

    kind: str  # one of KINDS
    factory: str  # FAISS index_factory string, inner-product metric
    nprobe: int = 0  # inverted lists visited per query
    quantizer_ef: int = 0  # efSearch of an HNSW coarse quantizer; 0 when the quantizer is a flat scan
    rerank_factor: int = 0  # the shortlist re-scored exactly is rerank_factor * max(k, 10); 0: no re-ranking
    train_size: int = 0  # sample vectors to train on
    bytes_per_vector: float = 0.0  # expected resident bytes per vector, coarse quantizer share included
    reason: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, saved: dict) -> IndexPlan:
        try:
            return cls(**saved)
        except TypeError as error:  # written by another version of vidsearch
            raise ValueError(f"unknown index plan {saved}: {error}") from None


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What `index info` shows; bytes_per_vector is the serialized index's size over its vectors."""

    kind: str
    factory: str
    vectors: int
    bytes_per_vector: float
    rerank_bytes: int  # the float16 vectors and ids on disk, not resident
    build_seconds: float | None
    nprobe: int
    quantizer_ef: int
    rerank_factor: int


def choose_index(
    n_vectors: int, dim: int, memory_budget_bytes: int | None = None, kind: str | None = None
) -> IndexPlan:
    """The index for `n_vectors` of `dim` dims within a RAM budget (None: DEFAULT_BYTES_PER_VECTOR when trained).

    Exact ("flat") up to FLAT_MAX_VECTORS; above, IVF with about 4*sqrt(n) lists (the low end of the FAISS
    guideline, which keeps training cheap on few cores) over SQ8 codes when the budget holds a byte per dim,
    else PQ codes as large as the budget allows. Both re-rank a shortlist exactly from the vectors on disk.
    HNSW over whole vectors is not offered: FAISS cannot remove vectors from it, and at 1 M it held 2.3 KB a
    vector for recall@10 0.92, where IVF-PQ held 81 B for 0.98.
    """
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind is None:
        small = n_vectors <= FLAT_MAX_VECTORS
        if small and (memory_budget_bytes is None or _flat_bytes(dim) * n_vectors <= memory_budget_bytes):
            return _flat_plan(dim, f"{n_vectors:,} vectors: exact search is fast enough and needs no training")
    if kind == "flat":
        plan = _flat_plan(dim, "exact search was asked for")
    else:
        plan = _trained_plan(n_vectors, dim, memory_budget_bytes, kind)
    if memory_budget_bytes is not None and plan.bytes_per_vector * n_vectors > memory_budget_bytes:
        raise ConfigError(
            f"a memory budget of {_megabytes(memory_budget_bytes)} cannot hold {n_vectors:,} vectors of {dim} dims: "
            f"the smallest {plan.kind} index ({plan.factory}) needs {_megabytes(plan.bytes_per_vector * n_vectors)}"
        )
    return plan


def _flat_bytes(dim: int) -> float:
    return 4 * dim + ID_BYTES


def _flat_plan(dim: int, reason: str, factory: str = FLAT_FACTORY) -> IndexPlan:
    return IndexPlan(kind="flat", factory=factory, bytes_per_vector=_flat_bytes(dim), reason=reason)


def _trained_plan(n: int, dim: int, budget: int | None, kind: str | None) -> IndexPlan:
    nlist = _list_count(n)
    hnsw = nlist >= HNSW_QUANTIZER_MIN_LISTS
    quantizer_bytes = nlist * dim * 4 + (nlist * HNSW_QUANTIZER_M * 2 * 4 if hnsw else 0)
    overhead = ID_BYTES + quantizer_bytes / max(n, 1)
    allowance = budget / max(n, 1) if budget is not None else DEFAULT_BYTES_PER_VECTOR
    if kind == "ivf-sq8" or (kind is None and budget is not None and dim + overhead <= allowance):
        kind, codes, code_bytes = "ivf-sq8", "SQ8", dim
    else:
        fitting = [m for m in _pq_sizes(dim) if m + overhead <= allowance]
        m = fitting[0] if fitting else _pq_sizes(dim)[-1]  # the smallest, which choose_index reports as too big
        kind, codes, code_bytes = "ivf-pq", f"PQ{m}np", m  # np: no polysemous training (slow, unused)
    min_train = max(nlist * TRAIN_POINTS_PER_LIST, PQ_TRAIN_POINTS if kind == "ivf-pq" else 0)
    if n < min_train:
        raise ConfigError(f"{n:,} vectors are too few to train an {kind} index (it needs {min_train:,})")
    quantizer = f"IVF{nlist}_HNSW{HNSW_QUANTIZER_M}" if hnsw else f"IVF{nlist}"
    nprobe = max(MIN_NPROBE, nlist // NPROBE_SHARE)
    return IndexPlan(
        kind=kind, factory=f"{quantizer},{codes}", nprobe=nprobe,
        quantizer_ef=QUANTIZER_EF_PER_PROBE * nprobe if hnsw else 0,
        rerank_factor=round(RERANK_FACTOR_AT_1M * max(1.0, n / 1e6) ** RERANK_GROWTH),
        train_size=min(n, min_train), bytes_per_vector=round(code_bytes + overhead, 1),
        reason=f"{n:,} vectors: {codes} codes in {nlist} lists ({code_bytes + overhead:.0f} B/vector resident), "
        f"shortlist re-ranked exactly from float16 vectors on disk",
    )


def _list_count(n: int) -> int:
    """A power of two near 4 * sqrt(n), between 64 and 65536, with TRAIN_POINTS_PER_LIST vectors for each list."""
    trainable = math.floor(math.log2(max(n / TRAIN_POINTS_PER_LIST, 1)))
    return 2 ** max(6, min(16, trainable, round(math.log2(4 * math.sqrt(max(n, 1))))))


def _pq_sizes(dim: int) -> list[int]:
    """PQ code sizes in bytes (one per sub-vector), largest first: sub-vectors of 8 to 32 dims.

    Shorter sub-vectors train slowly (k-means in 4 dims costs as much as in 8) and SQ8 suits budgets that big.
    """
    return [dim // sub for sub in range(8, 33) if dim % sub == 0] or [1]


def _megabytes(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def remove_index_files(path: Path) -> None:
    """Delete an index with its meta and re-rank files (an unreadable index is rebuilt from the shards)."""
    for each in (path, path.with_suffix(".json"), *rerank_paths(path)):
        each.unlink(missing_ok=True)


class VectorIndex:
    """One FAISS index; ids are the catalog's row ids, so deletes and rebuilds stay in agreement.

    Opening restores the kind and search parameters recorded in `<index>.json`; a truncated or mismatched index
    or re-rank file raises ValueError or RuntimeError, so the caller rebuilds instead of searching wrong data.
    """

    def __init__(self, path: Path, meta: IndexMeta):
        import faiss

        self.path = path
        self.meta = meta
        if path.exists() and not path.with_suffix(".json").exists():
            # the index file is written first, its description second: a save cut between them left this
            raise ValueError(f"{path} has no {path.with_suffix('.json').name}: its save was cut short")
        saved = _read_saved(path) if path.exists() else {}
        self.build_seconds: float | None = saved.get("build_seconds")
        self.store: RerankStore | None = None
        if path.exists():
            self.plan = (
                IndexPlan.from_json(saved["plan"]) if "plan" in saved
                else _flat_plan(meta.dim, "made before index plans", saved.get("factory", meta.factory))
            )
            self.index = faiss.read_index(str(path))
            if self.index.d != meta.dim:
                raise ValueError(f"{path} holds {self.index.d}-d vectors, expected {meta.dim}")
            trained = faiss.try_extract_index_ivf(self.index) is not None
            if trained != (self.plan.kind != "flat"):
                raise ValueError(f"{path} does not hold the {self.plan.kind} index its .json describes")
            if self.plan.rerank_factor or saved.get("rerank_generation") is not None:
                self._open_store(saved)
            _set_search_parameters(self.index, self.plan)
        else:
            self.plan = _flat_plan(meta.dim, "a new archive starts exact", meta.factory)
            self.index = faiss.index_factory(meta.dim, meta.factory, faiss.METRIC_INNER_PRODUCT)
        self.dirty = False

    def _open_store(self, saved: dict) -> None:
        store = RerankStore(self.path, self.meta.dim)
        if store.generation != saved.get("rerank_generation"):
            raise ValueError(f"{store.ids_path} belongs to another build than {self.path}")
        if store.rows < max(saved.get("rerank_rows", 0), self.size):
            raise ValueError(f"{store.ids_path} is truncated: {store.rows} rows for {self.size} indexed vectors")
        self.store = store

    @classmethod
    def build(
        cls,
        path: Path,
        meta: IndexMeta,
        plan: IndexPlan,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
        train_sample: np.ndarray | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> VectorIndex:
        """A new index of `plan` from (ids, vectors) batches, trained on `train_sample`, replacing any at `path`.

        The batches stream: only the index and one batch are in memory. The re-rank store, the index and its
        .json are written under temporary names and renamed in that order.
        """
        import faiss

        started = time.perf_counter()
        index = faiss.index_factory(meta.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        if plan.kind != "flat":
            _train(index, plan, train_sample)
        _set_search_parameters(index, replace(plan, quantizer_ef=min(plan.quantizer_ef, ADD_QUANTIZER_EF)))
        writer = RerankWriter(path, meta.dim) if plan.rerank_factor else None
        added = 0
        for ids, vectors in batches:
            ids = np.asarray(ids, dtype=np.int64)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if vectors.shape != (len(ids), meta.dim):
                raise ValueError(f"a batch of {len(ids)} ids came with vectors of shape {vectors.shape}")
            index.add_with_ids(vectors, ids)
            if writer:
                writer.write(ids, vectors)
            added += len(ids)
            if on_progress:
                on_progress(added)
        generation = writer.commit() if writer else None
        _write_index(index, path)
        del index
        seconds = time.perf_counter() - started
        _write_saved(path, meta, plan, added, seconds, generation, added)
        if writer is None:
            for stale in rerank_paths(path):  # an earlier build's
                stale.unlink(missing_ok=True)
        return cls(path, meta)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        import faiss

        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is None:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = ivf.invlists
        sizes = [lists.list_size(i) for i in range(ivf.nlist)]
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), n).copy() for i, n in enumerate(sizes) if n]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            ids = np.asarray(ids, dtype=np.int64)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if self.store is not None:
                self.store.append(ids, vectors)  # first, so the index never holds an id the store lacks
            self.index.add_with_ids(vectors, ids)
            self.dirty = True

    def remove(self, ids: np.ndarray) -> None:
        """Drop ids from the index; their re-rank rows stay until the next build, unreachable."""
        import faiss

        if len(ids):
            self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
            self.dirty = True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; id -1 pads rows when the index holds fewer than k vectors."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not self.plan.rerank_factor:
            return self.index.search(queries, k)
        shortlist = max(k, min(max(k, 10) * self.plan.rerank_factor, self.size))
        _, candidates = self.index.search(queries, shortlist)
        return self.store.rerank(queries, candidates, k)

    def tune(
        self, nprobe: int | None = None, quantizer_ef: int | None = None, rerank_factor: int | None = None
    ) -> None:
        """Change how a trained index is searched (saved with it); the structure stays as built."""
        if rerank_factor and self.store is None:
            raise ConfigError(f"{self.path} was built without re-rank vectors; rebuild it to re-rank")
        changes = {"nprobe": nprobe, "quantizer_ef": quantizer_ef, "rerank_factor": rerank_factor}
        self.plan = replace(self.plan, **{name: value for name, value in changes.items() if value is not None})
        _set_search_parameters(self.index, self.plan)
        self.dirty = True

    def save(self) -> None:
        """Write to a temporary file and rename, so a reader never sees half an index."""
        if self.store is not None:
            self.store.sync()
        _write_index(self.index, self.path)
        crash_point("index-saving")
        store = self.store
        _write_saved(
            self.path, self.meta, self.plan, self.size, self.build_seconds,
            store.generation if store else None, store.rows if store else 0,
        )
        self.dirty = False

    def nbytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def info(self) -> IndexInfo:
        import faiss

        serialized = self.nbytes() if self.path.exists() and not self.dirty else faiss.serialize_index(self.index).size
        return IndexInfo(
            kind=self.plan.kind, factory=self.plan.factory, vectors=self.size,
            bytes_per_vector=round(serialized / max(self.size, 1), 1),
            rerank_bytes=self.store.nbytes() if self.store else 0, build_seconds=self.build_seconds,
            nprobe=self.plan.nprobe, quantizer_ef=self.plan.quantizer_ef, rerank_factor=self.plan.rerank_factor,
        )


def _train(index, plan: IndexPlan, sample: np.ndarray | None) -> None:
    """Train the coarse quantizer (spherical k-means, on the GPU when FAISS has one) and the codes on `sample`."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    needed = max(ivf.nlist, 256 if plan.kind == "ivf-pq" else 0)
    given = 0 if sample is None else len(sample)
    if given < needed:
        raise ValueError(f"training {plan.factory} needs at least {needed} sample vectors, got {given}")
    ivf.cp.spherical = True  # centroids on the unit sphere, where the vectors are
    if faiss.get_num_gpus() > 0:
        assigner = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(index.d))
    elif plan.quantizer_ef:
        assigner = faiss.IndexHNSWFlat(index.d, HNSW_QUANTIZER_M)  # k-means assignment via the graph, not a scan
    else:
        assigner = None
    if assigner is not None:
        ivf.clustering_index = assigner
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    ivf.clustering_index = None  # not saved with the index, and `assigner` is freed here


def _set_search_parameters(index, plan: IndexPlan) -> None:
    import faiss

    if plan.nprobe:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", plan.nprobe)
    if plan.quantizer_ef:
        faiss.ParameterSpace().set_index_parameter(index, "quantizer_efSearch", plan.quantizer_ef)


def _write_index(index, path: Path) -> None:
    import faiss

    partial = path.with_suffix(".partial")
    faiss.write_index(index, str(partial))
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, path)


def _read_saved(path: Path) -> dict:
    meta_path = path.with_suffix(".json")
    try:
        return json.loads(meta_path.read_text()) if meta_path.exists() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{meta_path} is unreadable: {error}") from None


def _write_saved(
    path: Path, meta: IndexMeta, plan: IndexPlan, vectors: int, build_seconds: float | None,
    rerank_generation: int | None, rerank_rows: int,
) -> None:
    saved = {
        **meta.to_json(), "factory": plan.factory, "vectors": vectors, "plan": plan.to_json(),
        "build_seconds": build_seconds, "rerank_generation": rerank_generation, "rerank_rows": rerank_rows,
    }
    meta_path = path.with_suffix(".json")
    partial = meta_path.with_suffix(".json.partial")
    partial.write_text(json.dumps(saved, indent=1))
    os.replace(partial, meta_path)
