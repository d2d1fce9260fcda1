"""Recall against exact search counts what an index finds for a query, never the query finding itself."""

from __future__ import annotations

import numpy as np

from vidsearch.recall import recall_at_k


class FindsOnlyItself:
    """An index that answers each stored vector with that vector and then ids that are nobody's neighbours."""

    def __init__(self, own: np.ndarray):
        self.own = own

    def search(self, queries: np.ndarray, k: int):
        ids = np.stack([np.concatenate([[own], np.arange(1000, 1000 + k - 1)]) for own in self.own])
        return np.zeros(ids.shape, np.float32), ids


def test_a_stored_vector_finding_itself_earns_no_recall():
    own = np.array([1, 2, 3])
    exact = np.array([[own_id, *range(10 + 20 * own_id, 20 + 20 * own_id)] for own_id in own])  # k + 1 columns
    index, queries = FindsOnlyItself(own), np.zeros((3, 4), np.float32)
    assert recall_at_k(index, queries, exact, k=10) == 0.1  # as counted before: itself is one of ten
    assert recall_at_k(index, queries, exact, k=10, own_ids=own) == 0.0


def test_text_queries_keep_their_whole_answer():
    exact = np.arange(20).reshape(2, 10)

    class Exact:
        def search(self, queries, k):
            return np.zeros((2, k), np.float32), np.concatenate([exact, np.full((2, k - 10), -1)], axis=1)[:, :k]

    assert recall_at_k(Exact(), np.zeros((2, 4), np.float32), exact, k=10, own_ids=np.array([-1, -1])) == 1.0
