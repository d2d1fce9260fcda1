"""Trained indexes built, grown, reopened and damaged through the real FAISS (the choice of index, a pure function,
is tested in tests/unit/test_choose_index.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vidsearch.index import IndexMeta, VectorIndex, choose_index, remove_index_files
from vidsearch.recall import MAX_WIDENINGS, RECALL_TARGET, RecallQueries, exact_neighbours, recall_at_k, widen_to_recall
from vidsearch.rerank import _MINCORE, PAD_SCORE

DIM = 64  # the tiny CLIP's embedding size
N = 30_000
# what the Archive passes: the configured factory for a new index; a trained one comes from its .json
META = IndexMeta(factory="IDMap2,Flat", dim=DIM, model="tiny", weights="random")


def clustered(count: int, seed: int) -> np.ndarray:
    """Normalized vectors around 300 shared centres, like frames of a few hundred scenes."""
    centres = np.random.default_rng(0).standard_normal((300, DIM))
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, len(centres), count)] + 0.6 * rng.standard_normal((count, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


VECTORS = clustered(N, seed=1)
IDS = np.arange(N, dtype=np.int64) * 3 + 7  # catalog row ids: increasing, with gaps
QUERIES = clustered(200, seed=2)


def batches(size: int = 4000):
    # newest first, as shards may come: the build must sort its re-rank rows by id
    return [(IDS[i : i + size], VECTORS[i : i + size]) for i in reversed(range(0, N, size))]


@pytest.fixture(scope="module")
def single_thread():
    """One FAISS thread: on a shared two-core machine OpenMP threads that wait by spinning slow training tenfold."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def built(tmp_path_factory, single_thread) -> Path:
    plan = choose_index(N, DIM, kind="ivf-pq")
    sample = VECTORS[np.random.default_rng(3).choice(N, plan.train_size, replace=False)]
    path = tmp_path_factory.mktemp("built") / "frame.faiss"
    VectorIndex.build(path, META, plan, batches(), sample)
    return path


@pytest.fixture(scope="module")
def exact_ids() -> np.ndarray:
    return exact_neighbours(QUERIES, batches(), 10)[1]


@pytest.fixture
def index_copy(built, tmp_path) -> Path:
    for each in built.parent.iterdir():
        shutil.copy(each, tmp_path / each.name)
    return tmp_path / built.name


def test_exact_neighbours_match_brute_force():
    scores, ids = exact_neighbours(QUERIES[:5], batches(), 10)
    brute = QUERIES[:5] @ VECTORS.T
    assert np.array_equal(ids, IDS[np.argsort(-brute, axis=1)[:, :10]])
    # float32 rounding over 64 products of unit vectors stays under 1e-5
    assert np.allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :10], atol=1e-5)


def test_trained_index_finds_the_exact_neighbours(built, exact_ids):
    index = VectorIndex(built, META)
    assert index.plan.kind == "ivf-pq" and index.size == N
    # the planned search alone reaches the target an archive's build widens to (200 queries: spread ~0.007)
    assert recall_at_k(index, QUERIES, exact_ids) >= RECALL_TARGET
    assert np.array_equal(np.sort(index.ids()), IDS)
    scores, ids = index.search(VECTORS[:3], 5)
    # a vector's own score, re-ranked from its float16 copy, is within 2**-11 (5e-4) of 1
    assert list(ids[:, 0]) == list(IDS[:3]) and np.allclose(scores[:, 0], 1.0, atol=2e-3)


def test_a_search_too_narrow_for_the_target_is_widened_until_held_out_queries_reach_it(index_copy):
    index = VectorIndex(index_copy, META)
    index.tune(nprobe=1, rerank_factor=1)  # far narrower than planned: recall well under the target
    truth = exact_neighbours(QUERIES, batches(), 11)[1]
    tuning, measuring = RecallQueries(QUERIES, truth, np.full(len(QUERIES), -1)).halves()
    assert measuring.recall(index) < 0.8
    reached = widen_to_recall(index, [tuning], target=0.95)
    # held-out half: 100 queries, whose recall spreads about 0.01 (RECALL_MARGIN): two spreads under 0.95
    assert reached >= 0.95 and measuring.recall(index) >= 0.93
    widened = (index.plan.nprobe, index.plan.rerank_factor)
    assert widened != (1, 1) and index.plan.nprobe * index.plan.rerank_factor <= 2**MAX_WIDENINGS
    index.save()
    assert (VectorIndex(index_copy, META).plan.nprobe, VectorIndex(index_copy, META).plan.rerank_factor) == widened
    widen_to_recall(index, [tuning], target=0.5)  # reached already: nothing changes
    assert (index.plan.nprobe, index.plan.rerank_factor) == widened


def test_recall_halves_share_no_query():
    vectors = np.arange(10, dtype=np.float32)[:, None]
    tuning, measuring = RecallQueries(vectors, np.zeros((10, 11), np.int64), np.full(10, -1)).halves()
    assert not set(tuning.vectors[:, 0]) & set(measuring.vectors[:, 0])
    assert len(tuning.vectors) + len(measuring.vectors) == 10


def test_trained_index_reports_what_it_is(built):
    info = VectorIndex(built, META).info()
    assert (info.kind, info.factory, info.vectors) == ("ivf-pq", "IVF512,PQ8np", N)
    assert 8 < info.bytes_per_vector < 4 * DIM  # codes and ids, far below float32 vectors
    # a float16 vector (2 bytes a dim) and an int64 id each
    assert info.rerank_bytes >= N * (2 * DIM + 8)
    assert info.build_seconds > 0 and info.nprobe == 64 and info.rerank_factor == 20
    saved = json.loads(built.with_suffix(".json").read_text())
    assert saved["plan"]["factory"] == "IVF512,PQ8np" and saved["vectors"] == N and saved["model"] == "tiny"


def test_reopened_index_keeps_its_kind_and_results(built):
    first = VectorIndex(built, META)
    again = VectorIndex(built, META)
    assert again.plan == first.plan
    for left, right in zip(first.search(QUERIES, 10), again.search(QUERIES, 10)):
        assert np.array_equal(left, right)


def test_add_and_remove_after_build(index_copy):
    index = VectorIndex(index_copy, META)
    new_ids = np.array([IDS[-1] + 1, IDS[-1] + 5], dtype=np.int64)
    new_vectors = clustered(2, seed=4)
    index.add(new_ids, new_vectors)
    gone = IDS[:100]
    index.remove(gone)
    index.save()

    reopened = VectorIndex(index_copy, META)
    assert reopened.size == N + 2 - len(gone)
    _, ids = reopened.search(new_vectors, 3)
    assert list(ids[:, 0]) == list(new_ids)
    _, ids = reopened.search(VECTORS[:100], 10)
    assert not np.isin(ids, gone).any()
    assert not np.isin(gone, reopened.ids()).any()


def test_resumed_ingest_re_adds_what_the_store_already_holds(index_copy):
    index = VectorIndex(index_copy, META)
    late_ids, late_vectors = np.array([10**6, 10**6 + 1]), clustered(2, seed=5)
    index.add(late_ids, late_vectors)  # appended to the re-rank store at once, but never saved: a crash
    rows = index.store.rows

    resumed = VectorIndex(index_copy, META)
    assert resumed.size == N and resumed.store.rows == rows
    resumed.add(late_ids, late_vectors)  # what the Archive's reconciliation does
    assert resumed.store.rows == rows
    _, ids = resumed.search(late_vectors, 1)
    assert list(ids[:, 0]) == list(late_ids)


def test_an_id_below_the_last_rewrites_the_store_in_order(index_copy):
    index = VectorIndex(index_copy, META)
    vector = clustered(1, seed=6)
    index.add(np.array([8]), vector)  # between catalog ids 7 and 10
    index.save()
    reopened = VectorIndex(index_copy, META)
    scores, ids = reopened.search(vector, 1)
    # re-ranked from its float16 copy: within 2**-11 of 1
    assert ids[0, 0] == 8 and abs(scores[0, 0] - 1) < 2e-3
    assert recall_at_k(reopened, VECTORS[:50], IDS[:50, None], k=1) == 1.0


def test_reranked_scores_are_exact_products_with_the_stored_float16_vectors(built):
    index = VectorIndex(built, META)
    scores, ids = index.search(QUERIES, 10)
    stored = VECTORS.astype(np.float16).astype(np.float32)[np.searchsorted(IDS, ids)]
    assert np.allclose(scores, np.einsum("qkd,qd->qk", stored, QUERIES), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    one_at_a_time = [index.search(query[None], 10) for query in QUERIES[:20]]
    assert all(np.array_equal(each[1][0], ids[row]) for row, each in enumerate(one_at_a_time))

    index.store.CHUNK_ROWS = 150  # a block of one query at a time, as a huge k gets
    assert all(np.array_equal(left, right) for left, right in zip(index.search(QUERIES, 10), (scores, ids)))


def test_rerank_pads_what_the_shortlist_lacked(built):
    store = VectorIndex(built, META).store
    candidates = np.array([[IDS[3], -1, IDS[5], -1], [-1, -1, -1, -1]])
    scores, ids = store.rerank(QUERIES[:2], candidates, 3)
    assert set(ids[0, :2]) == {IDS[3], IDS[5]} and ids[0, 2] == -1 and list(ids[1]) == [-1, -1, -1]
    assert scores[0, 2] == scores[1, 0] == PAD_SCORE


def test_a_store_just_read_is_seen_in_memory(built):
    store = VectorIndex(built, META).store
    if _MINCORE is None:
        pytest.skip("no mincore on this system: every search asks for its rows")
    rows = np.arange(0, store.rows, 97)
    store._maps()[1][rows].sum()  # read: in the page cache now
    assert store._resident(rows)


def _evicted(path: Path) -> bool:
    """Drop a file from the page cache and say whether the kernel did: some file systems (tmpfs, overlays) keep it."""
    import ctypes
    import mmap
    import os

    with open(path, "rb") as f:
        os.fsync(f.fileno())  # dirty pages, such as a fresh copy's, are not dropped
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        pages = (os.fstat(f.fileno()).st_size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    status = ctypes.create_string_buffer(pages)
    view = np.frombuffer(mapping, np.uint8, 1)
    asked = _MINCORE(view.ctypes.data, pages * mmap.PAGESIZE, status)
    del view
    mapping.close()
    return asked == 0 and not any(byte & 1 for byte in status.raw)


def test_a_store_out_of_memory_has_its_rows_read_ahead(index_copy, monkeypatch):
    """The other side of the check above: rows not in the page cache are asked for all at once before reading."""
    if _MINCORE is None or not hasattr(__import__("os"), "posix_fadvise"):
        pytest.skip("no mincore or posix_fadvise on this system")
    vectors_path = index_copy.with_suffix(".rerank.f16")
    if not _evicted(vectors_path):
        pytest.skip(f"the file system of {vectors_path.parent} keeps files in memory")
    index = VectorIndex(index_copy, META)
    prefetched = []
    monkeypatch.setattr(index.store, "_prefetch", prefetched.append)
    index.search(QUERIES[:1], 10)
    assert len(prefetched) == 1 and len(prefetched[0]) == min(N, 10 * index.plan.rerank_factor)


def test_concurrent_searches_agree_and_keep_at_most_one_set_of_buffers_per_core(built):
    """A server searches from many threads at once: each search has buffers of its own while it runs, and only as
    many sets as there are cores stay behind."""
    from concurrent.futures import ThreadPoolExecutor

    index = VectorIndex(built, META)
    _, alone = index.search(QUERIES, 10)
    scratch = index.store._scratch
    scratch.kept_sets = 2
    for _ in range(5):
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda query: index.search(query[None], 10)[1], QUERIES))
        assert np.array_equal(np.concatenate(together), alone)
    assert 1 <= len(scratch._free) <= 2


def test_hnsw_coarse_quantizer_of_large_archives(tmp_path, single_thread, exact_ids):
    """Past 16384 lists the coarse quantizer is an HNSW graph; the same code path on a small index."""
    import faiss

    plan = replace(choose_index(N, DIM, kind="ivf-pq"), factory="IVF256_HNSW32,PQ8np", quantizer_ef=48)
    path = tmp_path / "frame.faiss"
    VectorIndex.build(path, META, plan, batches(), VECTORS[: plan.train_size])
    index = VectorIndex(path, META)
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index.index).quantizer)
    assert quantizer.hnsw.efSearch == 48 and index.plan == plan
    assert recall_at_k(index, QUERIES, exact_ids) >= RECALL_TARGET


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("suffix", [".faiss", ".rerank.f16", ".rerank.ids"])
def test_truncated_files_raise_on_open(index_copy, suffix):
    truncate(index_copy.with_suffix(suffix), 0.9)
    with pytest.raises((ValueError, RuntimeError)):
        VectorIndex(index_copy, META)


def test_files_of_another_build_raise_on_open(index_copy):
    meta_path = index_copy.with_suffix(".json")
    saved = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**saved, "rerank_generation": saved["rerank_generation"] + 1}))
    with pytest.raises(ValueError, match="another build"):
        VectorIndex(index_copy, META)
    meta_path.write_text(json.dumps({**saved, "plan": {**saved["plan"], "kind": "flat"}}))
    with pytest.raises(ValueError, match="does not hold the flat index"):
        VectorIndex(index_copy, META)


def test_new_index_is_flat_and_exact(tmp_path, exact_ids):
    path = tmp_path / "person.faiss"
    index = VectorIndex(path, META)
    assert index.plan.kind == "flat" and index.size == 0
    index.add(IDS, VECTORS)
    index.save()
    reopened = VectorIndex(path, META)
    assert reopened.plan.kind == "flat" and reopened.info().vectors == N
    assert recall_at_k(reopened, QUERIES, exact_ids) == 1.0
    remove_index_files(path)
    assert not list(tmp_path.iterdir())


def test_flat_build_and_an_index_saved_before_plans(tmp_path, exact_ids):
    path = tmp_path / "frame.faiss"
    VectorIndex.build(path, META, choose_index(N, DIM, kind="flat"), batches())
    meta_path = path.with_suffix(".json")
    meta_path.write_text(json.dumps({**META.to_json(), "vectors": N}))  # as vidsearch wrote it before
    index = VectorIndex(path, META)
    assert index.plan.kind == "flat"
    assert recall_at_k(index, QUERIES, exact_ids) == 1.0


def test_training_needs_a_sample(tmp_path):
    plan = choose_index(N, DIM, kind="ivf-pq")
    with pytest.raises(ValueError, match="needs at least 512 sample vectors, got 100"):
        VectorIndex.build(tmp_path / "frame.faiss", META, plan, batches(), VECTORS[:100])
