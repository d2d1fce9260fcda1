"""FAISS inner-product indexes keyed by catalog ids, saved atomically in the archive folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class IndexMeta:
    """Written beside the index so that a query never searches vectors of another embedder."""

    factory: str
    dim: int
    model: str
    weights: str

    def to_json(self) -> dict:
        return {"factory": self.factory, "dim": self.dim, "model": self.model, "weights": self.weights}


class VectorIndex:
    """One FAISS index; ids are the catalog's row ids, so deletes and rebuilds stay in agreement."""

    def __init__(self, path: Path, meta: IndexMeta):
        import faiss

        self.path = path
        self.meta = meta
        if path.exists():
            self.index = faiss.read_index(str(path))
            if self.index.d != meta.dim:
                raise ValueError(f"{path} holds {self.index.d}-d vectors, expected {meta.dim}")
        else:
            self.index = faiss.index_factory(meta.dim, meta.factory, faiss.METRIC_INNER_PRODUCT)
        self.dirty = False

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
            self.dirty = True

    def remove(self, ids: np.ndarray) -> None:
        import faiss

        if len(ids):
            self.index.remove_ids(faiss.IDSelectorBatch(ids.astype(np.int64)))
            self.dirty = True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; id -1 pads rows when the index holds fewer than k vectors."""
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def save(self) -> None:
        """Write to a temporary file and rename, so a reader never sees half an index."""
        import faiss

        partial = self.path.with_suffix(".partial")
        faiss.write_index(self.index, str(partial))
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, self.path)
        meta_path = self.path.with_suffix(".json")
        meta_partial = meta_path.with_suffix(".json.partial")
        meta_partial.write_text(json.dumps({**self.meta.to_json(), "vectors": self.size}, indent=1))
        os.replace(meta_partial, meta_path)
        self.dirty = False

    def nbytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0
