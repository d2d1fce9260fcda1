"""The vectors of a trained index kept exactly, as float16 rows sorted by id on disk, to re-rank its shortlists."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .threads import cores

ID_BYTES = 8
PAD_SCORE = float(np.finfo(np.float32).min)  # what FAISS returns beside the -1 ids padding a short result
_WILLNEED = getattr(mmap, "MADV_WILLNEED", None)  # a read-ahead hint; Windows has no madvise
RESIDENCY_SAMPLE = 8  # pages looked at to tell a store in the page cache from one on disk


def _mincore():
    """libc's mincore (which pages of a mapping are in memory), where there is one to ask."""
    if _WILLNEED is None:
        return None
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).mincore
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    function.restype = ctypes.c_int
    return function


_MINCORE = _mincore()


def widen_float16(halves: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float16 to float32 by moving bits in place, several times faster than numpy's cast, which converts one value
    at a time. `out`: an int32 array of halves' shape to widen into.

    The half's bits moved to the top of an int32 and shifted right by 3 (arithmetically, so the sign stays) put the
    exponent and mantissa in float32's places; masking the sign's copies off and scaling by 2^112 (the two formats'
    exponent biases differ by 112) gives the value, subnormals included. Stored vectors are finite, so the
    infinities and NaNs this would misread never occur.
    """
    bits = np.empty(halves.shape, np.int32) if out is None else out
    np.copyto(bits, halves.view(np.uint16))
    bits <<= 16
    bits >>= 3
    bits &= np.int32(-0x70000001)  # 0x8FFFFFFF: the sign and the 27 bits below the sign's three copies
    values = bits.view(np.float32)
    values *= np.float32(2.0**112)
    return values


class _Scratch:
    """Buffers for re-ranking, kept between searches: a fresh 2 MB array per query costs more in page faults (about
    3 ms here for 800 rows of 512 dimensions) than the work done in it. A search borrows a set and gives it back; at
    most one set per core this process may use is kept, so a server's many idle threads hold none. Larger requests
    get their own."""

    KEPT_BYTES = 16 << 20  # per set

    def __init__(self):
        self._free: list[tuple[np.ndarray, np.ndarray]] = []
        self._lock = threading.Lock()
        self.kept_sets = cores()

    @contextmanager
    def arrays(self, rows: int, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, dim) uint16 and int32 arrays for the length of the `with` block."""
        size = rows * dim
        if size * 6 > self.KEPT_BYTES:
            yield np.empty((rows, dim), np.uint16), np.empty((rows, dim), np.int32)
            return
        with self._lock:
            kept = self._free.pop() if self._free else None
        if kept is None or kept[0].size < size:
            kept = np.empty(size, np.uint16), np.empty(size, np.int32)
        try:
            yield kept[0][:size].reshape(rows, dim), kept[1][:size].reshape(rows, dim)
        finally:
            with self._lock:
                if len(self._free) < self.kept_sets:
                    self._free.append(kept)


def rerank_paths(index_path: Path) -> tuple[Path, Path]:
    return index_path.with_suffix(".rerank.f16"), index_path.with_suffix(".rerank.ids")


class RerankStore:
    """Float16 copies of the vectors on disk, rows sorted by id: `<index>.rerank.f16` and `<index>.rerank.ids`.

    Both files open with a header naming their build (a random generation), so files of two builds are never
    paired; an append writes the vectors before the ids, so a crash leaves at most vector bytes no id refers to.
    """

    HEADER_BYTES = 64
    MAGIC = b"VSRERANK"
    CHUNK_ROWS = 65536

    def __init__(self, index_path: Path, dim: int):
        self.index_path, self.dim = index_path, dim
        self.vectors_path, self.ids_path = rerank_paths(index_path)
        self.generation = self._read_header(self.ids_path)
        if self._read_header(self.vectors_path) != self.generation:
            raise ValueError(f"{self.vectors_path} and {self.ids_path} belong to different index builds")
        self.rows = (self.ids_path.stat().st_size - self.HEADER_BYTES) // ID_BYTES
        vector_rows = (self.vectors_path.stat().st_size - self.HEADER_BYTES) // (2 * dim)
        if vector_rows < self.rows:
            raise ValueError(f"{self.vectors_path} is truncated: {vector_rows} vectors for {self.rows} ids")
        self._close_maps()
        self._scratch = _Scratch()

    @classmethod
    def header(cls, dim: int, generation: int) -> bytes:
        return (cls.MAGIC + np.array([dim, generation], dtype="<i8").tobytes()).ljust(cls.HEADER_BYTES, b"\0")

    def _read_header(self, path: Path) -> int:
        try:
            with open(path, "rb") as f:
                header = f.read(self.HEADER_BYTES)
        except FileNotFoundError:
            raise ValueError(f"{path} is missing") from None
        if len(header) < self.HEADER_BYTES or header[:8] != self.MAGIC:
            raise ValueError(f"{path} is not a vidsearch re-rank file")
        dim, generation = np.frombuffer(header[8:24], dtype="<i8")
        if dim != self.dim:
            raise ValueError(f"{path} holds {dim}-d vectors, expected {self.dim}")
        return int(generation)

    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        if self._ids_map is None:
            self._ids_mmap, self._vectors_mmap = (self._mmap(path) for path in (self.ids_path, self.vectors_path))
            # the ids are 1/128 of the store and every search binary-searches them: read them in, in the background
            if _WILLNEED is not None:
                self._ids_mmap.madvise(_WILLNEED)
            self._ids_map = np.frombuffer(self._ids_mmap, "<i8", self.rows, self.HEADER_BYTES)
            self._vectors_map = np.frombuffer(
                self._vectors_mmap, "<f2", self.rows * self.dim, self.HEADER_BYTES
            ).reshape(self.rows, self.dim)
        return self._ids_map, self._vectors_map

    @staticmethod
    def _mmap(path: Path) -> mmap.mmap:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def _prefetch(self, rows: np.ndarray) -> None:
        """Ask for every row at once, so that reads from disk overlap instead of waiting one page fault at a time.

        With the store out of the page cache this took a 10 M-vector query from ~600 ms to ~12 ms.
        """
        if _WILLNEED is None:
            return
        row_bytes = 2 * self.dim
        for row in rows.tolist():
            start = self.HEADER_BYTES + row * row_bytes
            aligned = start - start % mmap.PAGESIZE
            self._vectors_mmap.madvise(_WILLNEED, aligned, start + row_bytes - aligned)

    def _resident(self, rows: np.ndarray) -> bool:
        """Whether a spread sample of the rows' pages is in memory already. Asking for every row costs a system call
        per row (1.7 ms for 800 rows), which a store already in the page cache does not need."""
        if _MINCORE is None or not len(rows):
            return False
        page = mmap.PAGESIZE
        start = np.frombuffer(self._vectors_mmap, np.uint8, 1).ctypes.data
        status = ctypes.create_string_buffer(1)
        for row in rows[:: max(1, len(rows) // RESIDENCY_SAMPLE)][:RESIDENCY_SAMPLE].tolist():
            offset = self.HEADER_BYTES + row * 2 * self.dim
            if _MINCORE(start + offset - offset % page, page, status) != 0 or not status.raw[0] & 1:
                return False
        return True

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The row of each id, and whether the store holds it."""
        if not self.rows or not len(ids):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        stored, _ = self._maps()
        rows = np.minimum(np.searchsorted(stored, ids), self.rows - 1)
        return rows, stored[rows] == ids

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best k of each query's candidate ids by exact inner product; -1 ids pad short rows."""
        scores = np.empty(candidates.shape, np.float32)  # every block is assigned
        queries_per_block = max(1, self.CHUNK_ROWS // max(1, candidates.shape[1]))  # bounded memory for huge k
        for start in range(0, len(candidates), queries_per_block):
            block = slice(start, start + queries_per_block)
            scores[block] = self._scores(queries[block], candidates[block])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top_scores = np.take_along_axis(scores, order, 1)
        top_ids = np.where(np.isfinite(top_scores), np.take_along_axis(candidates, order, 1), -1)
        top_scores[~np.isfinite(top_scores)] = PAD_SCORE
        short = ((0, 0), (0, k - order.shape[1]))
        return np.pad(top_scores, short, constant_values=PAD_SCORE), np.pad(top_ids, short, constant_values=-1)

    def _scores(self, queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Each query's inner product with each of its candidates (-inf for -1); each stored row read once, in file
        order, and scored in place by FAISS rather than copied out once per query."""
        import faiss

        found = candidates >= 0
        if not found.any():
            return np.full(candidates.shape, -np.inf, np.float32)
        # ids sorted first: numpy's binary search is several times faster for sorted keys, and rows follow ids
        ids, inverse = np.unique(candidates[found], return_inverse=True)
        rows, held = self.positions(ids)
        if not held.all():
            raise RuntimeError(
                f"{self.ids_path} lacks vectors the index holds (ids {ids[~held][:5].tolist()}); rebuild the index"
            )
        if not self._resident(rows):
            self._prefetch(rows)
        scores = np.empty(candidates.shape, np.float32)  # FAISS writes every cell; -1 candidates are reset below
        read_row = np.zeros(candidates.shape, np.int64)
        read_row[found] = inverse
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        with self._scratch.arrays(len(rows), self.dim) as (halves, widened):
            np.take(self._maps()[1].view(np.uint16), rows, axis=0, out=halves, mode="clip")  # "raise" would copy
            exact = widen_float16(halves, widened)
            faiss.fvec_inner_products_by_idx(
                faiss.swig_ptr(scores), faiss.swig_ptr(queries), faiss.swig_ptr(exact), faiss.swig_ptr(read_row),
                self.dim, len(queries), candidates.shape[1],
            )
        scores[~found] = -np.inf
        return scores

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store the rows of ids not held yet (a resumed ingest re-adds some); ids below the last rewrite the files."""
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], vectors[order]
        new = ~self.positions(ids)[1]
        ids, vectors = ids[new], vectors[new]
        if not len(ids):
            return
        if self.rows and ids[0] <= self._maps()[0][-1]:
            self._rewrite_with(ids, vectors)
            return
        self._close_maps()
        for path, offset, data in (
            (self.vectors_path, self.rows * 2 * self.dim, vectors.astype("<f2")),
            (self.ids_path, self.rows * ID_BYTES, ids.astype("<i8")),
        ):
            with open(path, "r+b") as f:
                f.seek(self.HEADER_BYTES + offset)
                f.write(data.tobytes())
                f.truncate()  # drops what a crashed append left past the last committed row
        self.rows += len(ids)

    def _rewrite_with(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        stored_ids, stored_vectors = self._maps()
        writer = RerankWriter(self.index_path, self.dim)
        for start in range(0, self.rows, self.CHUNK_ROWS):
            writer.write(stored_ids[start : start + self.CHUNK_ROWS], stored_vectors[start : start + self.CHUNK_ROWS])
        writer.write(ids, vectors)
        self._close_maps()
        self.generation = writer.commit()
        self.rows += len(ids)

    def _close_maps(self) -> None:
        self._ids_map = self._vectors_map = self._ids_mmap = self._vectors_mmap = None

    def sync(self) -> None:
        for path in (self.vectors_path, self.ids_path):
            with open(path, "rb") as f:
                os.fsync(f.fileno())

    def nbytes(self) -> int:
        return self.vectors_path.stat().st_size + self.ids_path.stat().st_size


class RerankWriter:
    """Writes a whole re-rank store under temporary names; `commit` sorts it by id if needed and puts it in place."""

    def __init__(self, index_path: Path, dim: int):
        self.index_path, self.dim = index_path, dim
        self.generation = secrets.randbits(62)
        self.partials = tuple(path.with_name(path.name + ".partial") for path in rerank_paths(index_path))
        self._files = [open(path, "wb") for path in self.partials]
        for f in self._files:
            f.write(RerankStore.header(dim, self.generation))
        self.last_id, self.ascending = -1, True

    def write(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.ascending &= bool(ids[0] > self.last_id and np.all(np.diff(ids) > 0))
            self.last_id = max(self.last_id, int(ids.max()))
            self._files[0].write(np.asarray(vectors, dtype="<f2").tobytes())
            self._files[1].write(np.asarray(ids, dtype="<i8").tobytes())

    def commit(self) -> int:
        """Rename into place, the ids file first: a crash between the renames leaves a header mismatch."""
        for f in self._files:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        if not self.ascending:
            self._sort()
        for partial, final in zip(reversed(self.partials), reversed(rerank_paths(self.index_path))):
            os.replace(partial, final)
        return self.generation

    def _sort(self) -> None:
        vectors_partial, ids_partial = self.partials
        ids = np.fromfile(ids_partial, "<i8", offset=RerankStore.HEADER_BYTES)
        order = np.argsort(ids, kind="stable")
        if np.any(np.diff(ids[order]) == 0):
            raise ValueError(f"the vectors given for {self.index_path} repeat ids")
        unsorted = vectors_partial.with_name(vectors_partial.name + ".unsorted")
        os.replace(vectors_partial, unsorted)
        vectors = np.memmap(unsorted, "<f2", "r", RerankStore.HEADER_BYTES, (len(ids), self.dim))
        header = RerankStore.header(self.dim, self.generation)
        with open(vectors_partial, "wb") as out:
            out.write(header)
            for start in range(0, len(order), RerankStore.CHUNK_ROWS):
                out.write(vectors[order[start : start + RerankStore.CHUNK_ROWS]].tobytes())
            os.fsync(out.fileno())
        del vectors
        unsorted.unlink()
        with open(ids_partial, "wb") as out:
            out.write(header + ids[order].tobytes())
            os.fsync(out.fileno())

