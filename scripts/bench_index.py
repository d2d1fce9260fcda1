"""Measure the FAISS index kinds of vidsearch.index on CLIP-like synthetic vectors, to choose between them.

Example:
    .venv/bin/python scripts/bench_index.py --n 100000
    .venv/bin/python scripts/bench_index.py --n 1000000 --json
    nohup .venv/bin/python scripts/bench_index.py --n 10000000 > /tmp/bench_index_10m.log 2>&1 &

Vectors: real CLIP image embeddings are anisotropic (a few directions carry most of the variance), share a
common offset (two unrelated frames have cosine ~0.5), come in topics of very different sizes (cameras, places)
and, from video, in shots of near-duplicate frames. So each vector is the normalized sum of a shared mean
direction (weight^2 0.45), one of 2000 topic centres drawn with log-normal popularity (0.25), a shot offset shared
by 16 consecutive vectors (0.2) and per-frame noise (0.1), every random part Gaussian with standard deviations
falling as i^-0.35 along a random orthogonal basis (participation ratio ~114 of 512 dims). Measured: cosine 0.45
between random vectors, 0.90 within a shot, 0.74 from a query to its nearest neighbour, 0.0015 between the 10th
and 11th neighbour (near-ties make recall@10 strict). Image-like queries are held-out shots of the same
distribution. Text-like queries model CLIP's modality gap: a direction shared by all texts, less of the image
mean, an image's topic and shot signal, and noise: cosine 0.15 to a random image, ~0.35 to the best of 65536,
0.64 between two texts. Rows are generated in chunks of 65536 with seeds derived from (seed, chunk), stored as
float16 in --workdir, so 10 M x 512 never sits in RAM as float32 (10 GB on disk; generated once, ~25 min here).

Each index is built in its own process and searched in another. "build RSS" is the build process's peak RSS
(index, training sample and one batch of 65536 vectors); "search RSS" is the anonymous resident memory of the
search process after opening the index (the re-rank file's pages are mapped file cache, not counted; "B/vec" is
the serialized index's size over its vectors). Recall@10 is against exact inner-product neighbours found by
chunked brute force over the whole file. Single queries run on one FAISS thread (a query is too small to share,
and OpenMP start-up then only adds latency); batches of 64 queries and builds use every core, with
OMP_WAIT_POLICY=PASSIVE so that threads do not spin against other work on a busy machine. p50/p95 are over the
single queries with a warm page cache; "batch" is milliseconds per query in calls of 64; "cold p50" drops the
re-rank files from the page cache (posix_fadvise) before each of 50 queries, as when the store outgrows RAM.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from benchkit import memory_status, print_table
from vidsearch.index import IndexMeta, IndexPlan, VectorIndex, choose_index, remove_index_files
from vidsearch.recall import RecallQueries, exact_neighbours, widen_to_recall

CHUNK = 65536
SHOT = 16
TOPICS = 2000
SPECTRUM_POWER = -0.35
WEIGHTS = {"mean": 0.45, "topic": 0.25, "shot": 0.2, "frame": 0.1}  # squared norms of the parts
QUERIES = 500
LATENCY_QUERIES = 300
COLD_QUERIES = 50
BATCH = 64
K = 10
FLAT_MAX_N = 2_000_000  # the flat index holds float32 vectors: 20 GB at 10 M, more than this machine has
HNSW_MAX_N = 1_000_000  # HNSW32 (a reference) holds ~2.3 KB a vector and takes > 5 min to build at 1 M on 2 cores


class ClipLikeVectors:
    """The synthetic distribution of the module docstring, reproducible chunk by chunk."""

    def __init__(self, dim: int, seed: int):
        self.dim, self.seed = dim, seed
        rng = np.random.default_rng(seed)
        self.rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
        spectrum = np.arange(1, dim + 1, dtype=np.float64) ** SPECTRUM_POWER
        self.spectrum = (spectrum / np.sqrt((spectrum**2).sum())).astype(np.float32)  # unit expected norm
        self.mean = _unit(rng.standard_normal(dim)).astype(np.float32)
        self.topics = self._anisotropic(rng, TOPICS)
        popularity = rng.lognormal(0.0, 1.0, TOPICS)
        self.popularity = popularity / popularity.sum()
        self.text_offset = _unit(rng.standard_normal(dim)).astype(np.float32)

    def _anisotropic(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        return (rng.standard_normal((rows, self.dim), dtype=np.float32) * self.spectrum) @ self.rotation

    def chunk(self, index: int, rows: int, stream: int = 0) -> np.ndarray:
        """Rows (a multiple of SHOT) of chunk `index`; stream 0 is the indexed set, others hold queries out."""
        rng = np.random.default_rng((self.seed, stream, index))
        topic = rng.choice(TOPICS, size=rows // SHOT, p=self.popularity)
        shots = np.sqrt(WEIGHTS["topic"]) * self.topics[topic] + np.sqrt(WEIGHTS["shot"]) * self._anisotropic(
            rng, len(topic)
        )
        vectors = np.sqrt(WEIGHTS["mean"]) * self.mean + np.repeat(shots, SHOT, axis=0)
        vectors += np.sqrt(WEIGHTS["frame"]) * self._anisotropic(rng, rows)
        return _normalized(vectors)

    def image_queries(self, count: int) -> np.ndarray:
        """One vector from each of `count` shots that are not in the indexed set."""
        return self.chunk(0, count * SHOT, stream=1)[::SHOT]

    def text_queries(self, count: int) -> np.ndarray:
        """The modality gap: an offset shared by all texts, less of the image mean, text's own noise."""
        images = self.chunk(0, count * SHOT, stream=2)[::SHOT] - np.sqrt(WEIGHTS["mean"]) * self.mean
        noise = self._anisotropic(np.random.default_rng((self.seed, 3)), count)
        return _normalized(0.72 * self.text_offset + 0.22 * self.mean + 0.6 * images + 0.35 * noise)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def dataset(workdir: Path, n: int, dim: int, seed: int) -> Path:
    """The float16 file of n vectors (row i has id i), generated once."""
    path = workdir / f"vectors-n{n}-d{dim}-s{seed}.f16"
    if not path.exists():
        generator = ClipLikeVectors(dim, seed)
        partial = path.with_suffix(".partial")
        started = time.perf_counter()
        with open(partial, "wb") as out:
            for index, start in enumerate(range(0, n, CHUNK)):
                out.write(generator.chunk(index, min(CHUNK, n - start))[: n - start].astype(np.float16).tobytes())
        os.replace(partial, path)
        log(f"generated {n:,} vectors in {time.perf_counter() - started:.0f} s: {path}")
    return path


def batches(path: Path, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, float32 vectors) chunks read into memory one at a time (no memory map, so RSS stays honest)."""
    with open(path, "rb") as f:
        start = 0
        while len(chunk := np.fromfile(f, np.float16, CHUNK * dim)):
            rows = chunk.reshape(-1, dim)
            yield np.arange(start, start + len(rows), dtype=np.int64), rows.astype(np.float32)
            start += len(rows)


def training_sample(path: Path, dim: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = path.stat().st_size // (2 * dim)
    share = min(1.0, size / n)
    return np.concatenate([vectors[rng.random(len(vectors)) < share] for _, vectors in batches(path, dim)])


CANDIDATES: dict[str, Callable[[int, int], IndexPlan | None]] = {
    "flat": lambda n, dim: choose_index(n, dim, kind="flat") if n <= FLAT_MAX_N else None,
    "ivf-pq": lambda n, dim: choose_index(n, dim, kind="ivf-pq"),
    # what a tight budget of 48 B/vector gets: PQ16 codes for 512 dims
    "ivf-pq-small": lambda n, dim: choose_index(n, dim, memory_budget_bytes=n * 48, kind="ivf-pq"),
    "ivf-sq8": lambda n, dim: choose_index(n, dim, kind="ivf-sq8"),
    "hnsw32": lambda n, dim: (
        IndexPlan(kind="hnsw", factory="IDMap2,HNSW32", bytes_per_vector=4 * dim + 264, reason="reference only")
        if n <= HNSW_MAX_N else None
    ),
}


def search_settings(plan: IndexPlan) -> list[dict]:
    """The plan's own parameters, and around them: no or half the re-ranking, half or twice the lists probed."""
    if plan.kind == "flat":
        return [{}]
    if plan.kind == "hnsw":
        return [{"efSearch": 64}, {"efSearch": 128}]
    probe, factor = plan.nprobe, plan.rerank_factor
    settings = [(probe, 0), (probe, factor // 2), (probe // 2, factor), (probe, factor), (2 * probe, factor)]
    ef_per_probe = plan.quantizer_ef // probe
    return [
        {"nprobe": nprobe, "rerank_factor": rerank, **({"quantizer_ef": nprobe * ef_per_probe} if ef_per_probe else {})}
        for nprobe, rerank in settings
    ]


def build(args, name: str) -> dict:
    import faiss

    plan = CANDIDATES[name](args.n, args.dim)
    data = dataset(args.workdir, args.n, args.dim, args.seed)
    path = args.workdir / f"{name}-n{args.n}.faiss"
    started = time.perf_counter()
    if plan.kind == "hnsw":
        index = faiss.index_factory(args.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        for ids, vectors in batches(data, args.dim):
            index.add_with_ids(vectors, ids)
        faiss.write_index(index, str(path))
        seconds = time.perf_counter() - started
    else:
        sample = training_sample(data, args.dim, plan.train_size, args.seed) if plan.kind != "flat" else None
        seconds = VectorIndex.build(path, _meta(args.dim, plan), plan, batches(data, args.dim), sample).build_seconds
    # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork and exec into ru_maxrss
    return {"build_s": round(seconds, 1), "rss_mb": round(_status_mb("VmHWM"))}


def search(args, name: str) -> list[dict]:
    import faiss

    plan = CANDIDATES[name](args.n, args.dim)
    path = args.workdir / f"{name}-n{args.n}.faiss"
    truth = np.load(args.workdir / f"truth-n{args.n}-d{args.dim}-s{args.seed}.npz")
    if plan.kind == "hnsw":
        index = _RawIndex(faiss.read_index(str(path)))
    else:
        index = VectorIndex(path, _meta(args.dim, plan))
    resident = _status_mb("RssAnon")
    settings = [(setting, "") for setting in search_settings(plan)]
    if _is_default(plan, args.n, args.dim) and plan.kind != "flat":
        settings.append(({}, "widened"))
    rows = []
    for setting, widened in settings:
        if plan.kind == "hnsw":
            faiss.downcast_index(index.index.index).hnsw.efSearch = setting["efSearch"]
        elif setting:
            index.tune(**setting)
        label = " ".join([plan.factory, *(f"{key}={value}" for key, value in setting.items() if key != "quantizer_ef")])
        faiss.omp_set_num_threads(os.cpu_count())
        image, text = (_recall_queries(truth, kind) for kind in ("image", "text"))
        if widened:  # as an archive's build does: tuned on half the queries, measured on the others
            index.tune(nprobe=plan.nprobe, quantizer_ef=plan.quantizer_ef, rerank_factor=plan.rerank_factor)
            widen_to_recall(index, [image.halves()[0], text.halves()[0]])
            image, text = image.halves()[1], text.halves()[1]
            label = (f"{plan.factory} widened to nprobe={index.plan.nprobe} "
                     f"rerank_factor={index.plan.rerank_factor} (held-out half)")
        image_recall, text_recall = image.recall(index, K), text.recall(index, K)
        single, batched = _latencies(index, truth["image_queries"])
        cold = _cold_latencies(index, truth["image_queries"]) if getattr(index, "store", None) else None
        rows.append({
            "n": args.n, "index": label, "kind": plan.kind,
            "default": _is_default(plan, args.n, args.dim) and _is_plans_own(setting, plan),
            "bytes_per_vector": round(path.stat().st_size / args.n, 1), "recall@10": round(image_recall, 4),
            "text_recall@10": round(text_recall, 4), "p50_ms": round(float(np.percentile(single, 50)), 3),
            "p95_ms": round(float(np.percentile(single, 95)), 3), "batch_ms_per_query": round(batched, 3),
            "cold_p50_ms": None if cold is None else round(float(np.percentile(cold, 50)), 3),
            "search_rss_mb": round(resident),
        })
    return rows


def _recall_queries(truth, kind: str) -> RecallQueries:
    """The benchmark's queries of one kind: none of them is a stored vector."""
    vectors = truth[f"{kind}_queries"]
    return RecallQueries(vectors, truth[f"{kind}_ids"], np.full(len(vectors), -1, np.int64))


class _RawIndex:
    """A bare FAISS index (the HNSW reference) with the search call of VectorIndex."""

    def __init__(self, index):
        self.index = index

    def search(self, queries: np.ndarray, k: int):
        return self.index.search(queries, k)


def _is_default(plan: IndexPlan, n: int, dim: int) -> bool:
    chosen = choose_index(n, dim)
    return (plan.kind, plan.factory) == (chosen.kind, chosen.factory)


def _is_plans_own(setting: dict, plan: IndexPlan) -> bool:
    return (setting.get("nprobe", 0), setting.get("rerank_factor", 0)) == (plan.nprobe, plan.rerank_factor)


def _latencies(index, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Single-query milliseconds on one thread, and milliseconds per query in batches on every core."""
    import faiss

    faiss.omp_set_num_threads(1)
    index.search(queries[:BATCH], K)  # warm caches
    single = []
    for query in queries[:LATENCY_QUERIES]:
        started = time.perf_counter()
        index.search(query[None], K)
        single.append((time.perf_counter() - started) * 1000)
    faiss.omp_set_num_threads(os.cpu_count())
    started = time.perf_counter()
    for start in range(0, len(queries), BATCH):
        index.search(queries[start : start + BATCH], K)
    return np.array(single), (time.perf_counter() - started) * 1000 / len(queries)


def _cold_latencies(index: VectorIndex, queries: np.ndarray) -> np.ndarray:
    """Single-query milliseconds with the re-rank files dropped from the page cache before each query."""
    timings = []
    for query in queries[:COLD_QUERIES]:
        for path in (index.store.vectors_path, index.store.ids_path):
            descriptor = os.open(path, os.O_RDONLY)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(descriptor)
        started = time.perf_counter()
        index.search(query[None], K)
        timings.append((time.perf_counter() - started) * 1000)
    return np.array(timings)


def _meta(dim: int, plan: IndexPlan) -> IndexMeta:
    return IndexMeta(factory=plan.factory, dim=dim, model="synthetic", weights="clip-like")


def _status_mb(field: str) -> float:
    return memory_status().get(field, 0) / 2**20


def ground_truth(args) -> None:
    """Queries and their exact neighbours, by chunked brute force over the file, saved once."""
    path = args.workdir / f"truth-n{args.n}-d{args.dim}-s{args.seed}.npz"
    if path.exists():
        return
    data = dataset(args.workdir, args.n, args.dim, args.seed)
    generator = ClipLikeVectors(args.dim, args.seed)
    image_queries, text_queries = generator.image_queries(QUERIES), generator.text_queries(QUERIES)
    started = time.perf_counter()
    _, exact = exact_neighbours(np.concatenate([image_queries, text_queries]), batches(data, args.dim), K)
    log(f"exact neighbours of {2 * QUERIES} queries in {time.perf_counter() - started:.0f} s")
    sample = next(batches(data, args.dim))[1][:4096]
    pairs = np.einsum("ij,ij->i", sample[: len(sample) // 2], sample[len(sample) // 2 :])
    same_shot = np.einsum("ij,ij->i", sample[0::SHOT], sample[1::SHOT])
    to_text = text_queries @ sample.T
    log(f"cosine: random pairs {pairs.mean():.2f}, same shot {same_shot.mean():.2f}, "
        f"text to its best image {to_text.max(axis=1).mean():.2f}, text to any image {to_text.mean():.2f}")
    np.savez(path, image_queries=image_queries, text_queries=text_queries,
             image_ids=exact[:QUERIES], text_ids=exact[QUERIES:])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child(args, role: str, name: str) -> list[dict]:
    """Run one build or search in a fresh process and return its JSON lines."""
    command = [sys.executable, __file__, "--n", str(args.n), "--dim", str(args.dim), "--seed", str(args.seed),
               "--workdir", str(args.workdir), f"--{role}", name]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def print_results(rows: list[dict]) -> None:
    columns = [
        ("index", "index", "{}"), ("B/vec", "bytes_per_vector", "{:.0f}"), ("recall@10", "recall@10", "{:.3f}"),
        ("text r@10", "text_recall@10", "{:.3f}"), ("p50 ms", "p50_ms", "{:.2f}"), ("p95 ms", "p95_ms", "{:.2f}"),
        ("batch ms/q", "batch_ms_per_query", "{:.2f}"), ("cold p50", "cold_p50_ms", "{:.1f}"),
        ("build s", "build_s", "{:.0f}"),
        ("build RSS MB", "rss_mb", "{:.0f}"), ("search RSS MB", "search_rss_mb", "{:.0f}"),
    ]
    print_table([title for title, _, _ in columns], [
        ["-" if row[key] is None else form.format(row[key]) + ("  *" if key == "index" and row["default"] else "")
         for _, key, form in columns]
        for row in rows
    ], rule=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vidsearch-bench-index"))
    parser.add_argument("--indexes", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--json", action="store_true", help="one JSON object per index and search setting")
    parser.add_argument("--keep", action="store_true", help="keep the built indexes in --workdir, and reuse them")
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--search", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.build:
        print(json.dumps(build(args, args.build)))
        return
    if args.search:
        for row in search(args, args.search):
            print(json.dumps(row))
        return
    ground_truth(args)
    rows = []
    for name in args.indexes:
        if CANDIDATES[name](args.n, args.dim) is None:
            log(f"{name}: skipped at n={args.n:,} (see FLAT_MAX_N / HNSW_MAX_N)")
            continue
        path = args.workdir / f"{name}-n{args.n}.faiss"
        kept = path.with_suffix(".build.json")
        if args.keep and kept.exists():
            built = json.loads(kept.read_text())
        else:
            log(f"{name}: building")
            built = child(args, "build", name)[0]
            kept.write_text(json.dumps(built))
        for row in child(args, "search", name):
            rows.append({**row, **built})
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
        if not args.keep:
            remove_index_files(path)
            kept.unlink()
    if not args.json:
        print(f"n = {args.n:,}, dim {args.dim}, {QUERIES} queries, k = {K}; * = what choose_index picks")
        print_results(rows)


if __name__ == "__main__":
    main()
