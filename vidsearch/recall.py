"""How well a trained index finds the exact neighbours, and widening its search until it finds enough of them.

Recall is measured on held-out queries: each query's own stored vector is left out of its answer, and a search is
widened on one half of the queries and reported on the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .index import VectorIndex

# A trained index is widened at build until it finds this share of the exact top 10 for the archive's own queries:
# index.py's defaults are measured on synthetic vectors, and real text queries can sit farther from their answers.
RECALL_TARGET = 0.95
# Widened on some queries and measured on others, recall differs by sampling: with ~100 queries a group the spread
# is about 0.01, so the queries a search is widened on must reach the target by that much more.
RECALL_MARGIN = 0.01
MAX_WIDENINGS = 4  # each doubles the shortlist or the lists visited: at most 16x the planned search cost


def exact_neighbours(
    queries: np.ndarray, batches: Iterable[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k scores and ids by inner product, by brute force over (ids, vectors) batches kept one at a time."""
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for ids, vectors in batches:
        scores, rows = faiss.knn(queries, np.ascontiguousarray(vectors, dtype=np.float32), min(k, len(ids)),
                                 metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, np.asarray(ids, dtype=np.int64)[rows])
    heap.finalize()
    return heap.D, heap.I


def recall_at_k(
    index: VectorIndex, queries: np.ndarray, exact_ids: np.ndarray, k: int = 10, own_ids: np.ndarray | None = None
) -> float:
    """Share of each query's exact top-k ids (from `exact_neighbours`) that the index returns in its top k.

    `own_ids` names, per query, the stored vector it is (-1 for a query that is none, such as a text): that id is
    left out of both lists, so that a vector finding itself, which any index does, counts for nothing. `exact_ids`
    then needs k + 1 columns.
    """
    own = np.full(len(queries), -1, np.int64) if own_ids is None else np.asarray(own_ids, np.int64)
    _, found = index.search(queries, k + int((own >= 0).any()))
    hits = total = 0
    for returned, exact, itself in zip(found, exact_ids, own):
        returned = returned[(returned >= 0) & (returned != itself)][:k]
        exact = exact[(exact >= 0) & (exact != itself)][:k]
        hits += len(np.intersect1d(returned, exact))
        total += len(exact)
    return hits / max(total, 1)


@dataclass(frozen=True, slots=True)
class RecallQueries:
    """Query vectors, their exact top k + 1 ids, and the stored vector each is (-1 for none), for recall_at_k."""

    vectors: np.ndarray
    exact_ids: np.ndarray
    own_ids: np.ndarray

    def halves(self) -> tuple[RecallQueries, RecallQueries]:
        """Alternate rows: one half to tune a search on, the other to measure it, so the figure is not fitted."""
        return self._rows(slice(0, None, 2)), self._rows(slice(1, None, 2))

    def _rows(self, rows: slice) -> RecallQueries:
        return RecallQueries(self.vectors[rows], self.exact_ids[rows], self.own_ids[rows])

    def recall(self, index: VectorIndex, k: int = 10) -> float:
        return recall_at_k(index, self.vectors, self.exact_ids, k, self.own_ids)


def widen_to_recall(
    index: VectorIndex, groups: list[RecallQueries], target: float = RECALL_TARGET + RECALL_MARGIN
) -> float:
    """Widen a trained index's search until recall@10 reaches `target` in every group of queries (text queries and
    queries by example find their neighbours differently), MAX_WIDENINGS steps at most.

    Each step doubles whichever of the re-ranked shortlist or the visited lists (with the HNSW quantizer's search)
    gains more: the shortlist when PQ scores blur near-ties, the lists when the exact neighbours lie in lists not
    visited. Returns the lowest group's recall; the widened plan is saved with the index.
    """
    import faiss

    def lowest() -> float:
        return min(group.recall(index) for group in groups if len(group.vectors))

    lists = faiss.extract_index_ivf(index.index).nlist
    recall = lowest()
    for _ in range(MAX_WIDENINGS):
        if recall >= target:
            break
        plan = index.plan
        wider_lists = {"nprobe": min(2 * plan.nprobe, lists), "quantizer_ef": 2 * plan.quantizer_ef or None}
        choices = [{"rerank_factor": 2 * plan.rerank_factor}] if plan.rerank_factor else []
        choices.append(wider_lists)
        measured = []
        for choice in choices:
            index.tune(**choice)
            measured.append((lowest(), choice))
            index.tune(nprobe=plan.nprobe, quantizer_ef=plan.quantizer_ef, rerank_factor=plan.rerank_factor)
        recall, best = max(measured, key=lambda pair: pair[0])
        index.tune(**best)
    return recall
