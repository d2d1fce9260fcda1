"""Warm end-to-end query latency at archive scale: `Archive.query(text, k=20, timings=...)` on an open archive of
N synthetic frame vectors (text encode + FAISS search + the hits' meaning from the catalog), and the wall time of a
cold `vidsearch query` process on the same archive.

    YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_warm_query.py --n 1000000 --json
    YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_warm_query.py --n 100000   # quick; stays flat

The archive is built once per (N, frames per video) under --work and reused: videos of --frames-per-video frames
(default 5000; the last one takes the remainder) committed one by one through the real catalog and Parquet shards
with the ingester's `commit` and a `ProcessedVideo`, as tests/integration/test_archive_index.py does, into the flat index, then
`archive.save_indexes()` and `archive.build_index()`, which picks the index for the size (trained IVF-PQ past
100 000 vectors; flat at or below) and measures its recall@10 against exact search. CLIP is ViT-B-32 with the
benchmarks' random weights (torch.manual_seed(0); --weights names another file): speed does not depend on the
values, and the archive records the model, so queries run its exported ONNX text tower.

Synthetic vectors imitate CLIP image embeddings of surveillance-like footage at 1 fps. Every vector is
    normalize(a*g + b*scene + c*shot + d*noise),  a^2, b^2, c^2, d^2 = 0.45, 0.27, 0.20, 0.08,
with unit vectors g (one direction shared by all images: CLIP image embeddings sit in a narrow cone, unrelated
images at cosine ~0.4-0.5), scene (one of 5000 shared scene centres; each video shows 1-5 of them, as a camera
shows a few views), shot (a random direction per shot of 10-300 consecutive frames) and noise (per frame). So
unrelated frames meet at cosine ~0.45, frames of one scene in other shots or videos ~0.72, frames of one shot
~0.92: near-duplicate neighbours, as real footage has, which grouping merges into moments.
Query texts come from a random-weight text tower, so scores mean nothing; only time is measured.

Warm rows are measured in a fresh child process: it opens the archive, runs 5 warm-up queries (the first, which
loads the text tower and the index, is its own row), then --queries distinct texts per kind (frame, all), each
never asked before (VIDSEARCH_CACHE is a new folder per run, holding a link to the exported tower only), then the
same texts again (text vector cache hits: encode is a memory lookup). `other` is total minus encode, search, fetch
and the first query's loads (parsing, attribute mentions, grouping into moments). `searches` is the mean number of
index searches per query (grouping asks for 4x more candidates until k moments are found; kind=all searches the
frame and the person index). The archive holds no person vectors, so kind=all is frame search plus an empty
person index. "Index search alone" times the frame index's own search (k=10, one FAISS thread, one text vector
at a time) and measures its recall@10 on those texts against exact search over the shards. Cold rows:
`python -m vidsearch --index DIR query TEXT --timings` in a new process, --cold-runs rounds of a new text (misses
the cache, loads the tower) and a repeated text (hits it), after the warm child has exited; wall is the median from
spawn to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchkit import peak_rss_mb, query_timings, random_weights, timed_process

SCENES = 5000
MIX = np.sqrt([0.45, 0.27, 0.20, 0.08])  # global direction, scene, shot, per-frame noise
WARMUP = 5
SUBJECTS = ("a man", "a woman", "two people", "a child", "an old man", "a cyclist", "a delivery driver",
            "a police officer", "a jogger", "a group of teenagers", "a security guard", "a tall woman")
LOOKS = ("in a red jacket", "with a backpack", "in a white shirt", "wearing glasses", "carrying an umbrella",
         "in a yellow raincoat", "with a dog", "in a dark suit", "wearing a baseball cap", "with a shopping bag",
         "in a blue hoodie", "with long hair")
WHERE = ("walking on the sidewalk", "near a parked car", "crossing the street", "at the entrance",
         "in the parking lot", "at night", "running", "sitting on a bench", "next to a white van",
         "by the bus stop", "on a bicycle", "talking on a phone")
VEHICLES = ("white van parked", "a red car turning left", "a black suv at the gate", "a taxi stopping",
            "a truck unloading boxes", "a motorbike in the rain", "a bus at the stop", "a silver sedan reversing")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class Synthetic:
    """Frame vectors of one video at a time, reproducible per (seed, video number)."""

    def __init__(self, dim: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim, self.seed = dim, seed
        self.shared = unit(rng.standard_normal(dim))
        self.scenes = unit(rng.standard_normal((SCENES, dim)))

    def video(self, number: int, frames: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, number])
        lengths, total = [], 0
        while total < frames:
            lengths.append(int(rng.integers(10, 301)))
            total += lengths[-1]
        shot = np.repeat(np.arange(len(lengths)), lengths)[:frames]
        views = rng.choice(SCENES, size=int(rng.integers(1, 6)), replace=False)
        scene = self.scenes[rng.choice(views, size=len(lengths))]
        direction = unit(rng.standard_normal((len(lengths), self.dim)))
        noise = unit(rng.standard_normal((frames, self.dim)))
        a, b, c, d = MIX
        return unit(a * self.shared + b * scene[shot] + c * direction[shot] + d * noise).astype(np.float32)


def query_texts(count: int, seed: int = 7) -> list[str]:
    """`count` distinct descriptions, varied, in a fixed shuffled order."""
    people = [f"{s} {l} {w}" for s in SUBJECTS for l in LOOKS for w in WHERE]
    places = ("at dusk", "on a wet road", "from above", "in the snow", "at noon")
    cars = [f"{v} {p}" for v in VEHICLES for p in places]
    rng = np.random.default_rng(seed)
    texts = [people[i] for i in rng.permutation(len(people))]
    for i, car in enumerate(cars[i] for i in rng.permutation(len(cars))):  # a vehicle every 8th text
        texts.insert(8 * i + 3, car)
    texts = list(dict.fromkeys(texts))
    if count > len(texts):
        raise SystemExit(f"at most {len(texts)} distinct texts")
    return texts[:count]


# --- build ---------------------------------------------------------------------------------------------------


def archive_folder(args) -> Path:
    return args.work / f"archive-{args.n}-f{args.frames_per_video}"


def build(args) -> None:
    """(child process) commit the synthetic videos, save the flat index, build the index for the size."""
    from vidsearch import Archive

    from vidsearch.records import ProcessedVideo, SampledFrame, VideoFile, VideoInfo

    folder = archive_folder(args)
    archive = Archive.open(folder, clip_model="ViT-B-32", clip_pretrained=str(args.weights), device="cpu")
    dim = archive.embedder().identity.dim  # loads the model once: records it, exports its text tower
    synthetic = Synthetic(dim)
    videos = -(-args.n // args.frames_per_video)
    indexes = archive.indexes()
    started, committed, skipped = time.perf_counter(), 0, 0
    for number in range(videos):
        path = folder / "footage" / f"camera-{number:05d}.mp4"  # never read: commit takes the result as given
        known = archive.catalog.video(path)
        if known is not None and known.status == "indexed":  # committed by an earlier, interrupted build
            skipped += 1
            continue
        frames = min(args.frames_per_video, args.n - number * args.frames_per_video)
        info = VideoInfo(duration=float(frames), fps=1.0, width=1280, height=720, frame_count=frames, timeline="pts")
        result = ProcessedVideo(
            info=info, reader="pyav", sample_fps=1.0, frames=[SampledFrame(i, float(i)) for i in range(frames)],
            frames_skipped=0, persons=[], objects=[], appearances=[], frame_vectors=synthetic.video(number, frames),
            person_vectors=np.zeros((0, dim), np.float32),
        )
        archive.services.ingester.commit(VideoFile(path=path, size=1, mtime_ns=1), f"synthetic-{number}", result)
        committed += 1
        if committed % 10 == 0 or number == videos - 1:
            elapsed = time.perf_counter() - started
            rss = peak_rss_mb() / 1024
            print(f"build: {number + 1}/{videos} videos, {indexes['frame'].size:,} vectors, {elapsed:.0f} s "
                  f"({committed * args.frames_per_video / elapsed:,.0f} vectors/s), max RSS {rss:.1f} GB",
                  file=sys.stderr, flush=True)
    commit_s = time.perf_counter() - started
    print("build: saving the flat index", file=sys.stderr, flush=True)
    archive.save_indexes()
    saved_s = time.perf_counter() - started
    commits = folder / "bench-commit.json"  # the commit phase's timing survives a build resumed after it
    if committed or not commits.exists():
        commits.write_text(json.dumps({"commit_s": round(commit_s, 1), "save_flat_s": round(saved_s - commit_s, 1),
                                       "resumed_videos": skipped}))
    first = json.loads(commits.read_text())
    print("build: archive.build_index() ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    reports = archive.build_index()
    build_s = time.perf_counter() - started
    frame = reports["frame"].to_json()
    record = {
        "row": "build", "n": archive.indexes()["frame"].size, "videos": videos,
        "frames_per_video": args.frames_per_video,
        "commit_s": first["commit_s"], "save_flat_s": first["save_flat_s"], "build_index_s": round(build_s, 1),
        "frame_index": frame,
        "max_rss_gb": round(peak_rss_mb() / 1024, 2),
    }
    archive.close()
    (folder / "bench-build.json").write_text(json.dumps(record, indent=1))
    print(f"build: done: {json.dumps(record)}", file=sys.stderr, flush=True)


# --- measure -------------------------------------------------------------------------------------------------


def measure(args) -> None:
    """(child process, fresh) open the archive, warm up, time distinct then repeated texts; JSON to --out."""
    from vidsearch import Archive
    from vidsearch.index import VectorIndex

    searches = [0]
    search = VectorIndex.search

    def counted(self, queries, k):
        searches[0] += 1
        return search(self, queries, k)

    VectorIndex.search = counted
    started = time.perf_counter()
    archive = Archive.open(archive_folder(args))
    open_ms = (time.perf_counter() - started) * 1000
    texts = query_texts(WARMUP + 2 * args.queries)
    warmup, fresh = texts[:WARMUP], {"frame": texts[WARMUP :: 2], "all": texts[WARMUP + 1 :: 2]}
    samples: dict[str, list[dict]] = {}

    def run(row: str, text: str, kind: str) -> None:
        timings, searches[0] = {}, 0
        hits = archive.query(text, k=args.k, kind=kind, timings=timings)
        samples.setdefault(row, []).append({**timings, "searches": searches[0], "hits": len(hits)})

    run("first query in the process|all", warmup[0], "all")
    for text in warmup[1:]:
        archive.query(text, k=args.k)
    for phase in ("new text", "repeated text (cache hit)"):
        for kind in ("frame", "all"):
            for text in fresh[kind]:
                run(f"warm, {phase}|{kind}", text, kind)
    VectorIndex.search = search
    index_alone = search_alone(archive, [*fresh["frame"], *fresh["all"]])
    archive.close()
    Path(args.out).write_text(json.dumps({"open_ms": open_ms, "samples": samples, "index_alone": index_alone}))


def search_alone(archive, texts: list[str], k: int = 10) -> dict:
    """The frame index's own search, one text vector at a time (encoding not counted), and its recall@10 against
    exact search over the shards. These texts are not the vocabulary phrasings the build tuned the search on."""
    import faiss

    from vidsearch.recall import exact_neighbours, recall_at_k

    index = archive.indexes()["frame"]
    vectors = archive.text_encoder().embed_texts(texts).astype(np.float32)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one query is too small to share between threads
    elapsed = []
    for vector in vectors:
        started = time.perf_counter()
        index.search(vector[None], k)
        elapsed.append((time.perf_counter() - started) * 1000)
    faiss.omp_set_num_threads(threads)
    scores, exact = exact_neighbours(vectors, archive.services.indexes.vector_batches("frame"), k + 1)
    return {"queries": len(vectors), "p50_ms": round(percentile(elapsed, 50), 2),
            "p95_ms": round(percentile(elapsed, 95), 2),
            "recall@10": round(recall_at_k(index, vectors, exact[:, :k], k), 4),
            "plan": {"nprobe": index.plan.nprobe, "rerank_factor": index.plan.rerank_factor},
            # how far the texts are from any frame, and how close the 10th and 11th neighbours are: near-ties far
            # from everything are what makes recall hard
            "best_score": round(float(scores[:, 0].mean()), 3),
            "gap_10th_11th": round(float((scores[:, k - 1] - scores[:, k]).mean()), 4)}


# --- driver --------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def warm_rows(measured: dict, n: int) -> list[dict]:
    rows = []
    for name, samples in measured["samples"].items():
        phase, kind = name.split("|")
        for s in samples:
            s["other_ms"] = s["total_ms"] - sum(s[key] for key in (
                "encode_ms", "search_ms", "fetch_ms", "model_load_ms", "index_load_ms"))
        row = {"row": phase, "kind": kind, "n": n, "queries": len(samples)}
        for key in ("encode_ms", "search_ms", "fetch_ms", "other_ms", "total_ms"):
            values = [s[key] for s in samples]
            row[key] = {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}
        for key in ("model_load_ms", "index_load_ms"):
            row[key] = round(statistics.mean(s[key] for s in samples), 1)
        row["searches"] = round(statistics.mean(s["searches"] for s in samples), 2)
        row["hits"] = round(statistics.mean(s["hits"] for s in samples), 1)
        rows.append(row)
    return rows


def cold_rows(args, env: dict, n: int) -> list[dict]:
    folder = archive_folder(args)
    command = [sys.executable, "-m", "vidsearch", "--index", str(folder), "query"]
    repeated = "a man in a red jacket walking on the lawn, asked before"
    new = [f"someone leaving a grey hatchback, cold run {i}" for i in range(args.cold_runs)]

    def timed(text: str) -> tuple[float, dict]:
        wall, stderr = timed_process([*command, text, "--timings"], env)
        return wall, query_timings(stderr)

    timed(repeated)  # the cache now holds it
    runs: dict[str, list[tuple[float, dict]]] = {"cold, new text": [], "cold, repeated text (cache hit)": []}
    for text in new:  # round by round, so load from other processes hits both alike
        runs["cold, new text"].append(timed(text))
        runs["cold, repeated text (cache hit)"].append(timed(repeated))
    rows = []
    for name, measured in runs.items():
        steps = {key: statistics.median(b[key] for _, b in measured) for key in measured[0][1]}
        rows.append({"row": name, "kind": "all", "n": n, "queries": len(measured),
                     "wall_s": round(statistics.median(w for w, _ in measured), 3),
                     "steps_ms": {key: round(v, 1) for key, v in steps.items()}})
    return rows


def fmt(cell: dict | None) -> str:
    return "-" if cell is None else f"{cell['p50']:.1f} / {cell['p95']:.1f}"


def print_tables(build_record: dict, warm: list[dict], cold: list[dict]) -> None:
    index = build_record["frame_index"]
    recall = index.get("recall@10")
    saved = build_record["save_flat_s"]
    print(f"\narchive: {build_record['n']:,} frame vectors in {build_record['videos']} videos of "
          f"{build_record['frames_per_video']}; commit {build_record['commit_s']:.0f} s, save flat "
          f"{'?' if saved is None else round(saved)} s; build_index {build_record['build_index_s']:.0f} s -> "
          f"{index.get('index')} {index.get('factory')}, recall@10 {recall if recall is None else f'{recall:.3f}'} "
          f"({index.get('recall_queries')} queries)")
    print("\nwarm Archive.query(text, k=20, timings=...), ms, p50 / p95")
    print("| row | kind | queries | encode | search | fetch | other | total | searches/query |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in warm:
        print(f"| {r['row']} | {r['kind']} | {r['queries']} | {fmt(r['encode_ms'])} | {fmt(r['search_ms'])} | "
              f"{fmt(r['fetch_ms'])} | {fmt(r['other_ms'])} | {fmt(r['total_ms'])} | {r['searches']} |")
    first = next((r for r in warm if r["row"].startswith("first")), None)
    if first:
        print(f"(first query also loaded: text tower {first['model_load_ms']:.0f} ms, index "
              f"{first['index_load_ms']:.0f} ms; its total includes both)")
    print("\ncold `vidsearch query` process, median of rounds")
    print("| row | runs | wall s | steps (ms, medians) |")
    print("|---|---|---|---|")
    for r in cold:
        steps = ", ".join(f"{k} {v:.0f}" for k, v in r["steps_ms"].items())
        print(f"| {r['row']} | {r['queries']} | {r['wall_s']:.2f} | {steps} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="frame vectors in the archive")
    parser.add_argument("--frames-per-video", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=50, help="distinct texts per kind")
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--weights", type=Path, help="ViT-B-32 weights file (default: the benchmarks' random ones)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-bench-warm")
    parser.add_argument("--json", action="store_true", help="also print one JSON object per row")
    parser.add_argument("--role", choices=("build", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "build":
        return build(args)
    if args.role == "measure":
        return measure(args)

    args.work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    env = {**os.environ, "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "VIDSEARCH_CACHE": str(args.work / "cache")}
    for name in ("VIDSEARCH_CLIP_MODEL", "VIDSEARCH_CLIP_PRETRAINED", "VIDSEARCH_INDEX"):
        env.pop(name, None)
    own = [sys.executable, os.path.abspath(__file__), "--n", str(args.n), "--frames-per-video",
           str(args.frames_per_video), "--work", str(args.work), "--queries", str(args.queries), "-k", str(args.k)]
    folder = archive_folder(args)
    marker = folder / "bench-build.json"
    if not marker.exists():
        weights = args.weights or random_weights("ViT-B-32")[1]
        print(f"building {folder} (once; resumes where an interrupted build stopped)", file=sys.stderr, flush=True)
        subprocess.run([*own, "--role", "build", "--weights", str(weights)], env=env, check=True)
    else:
        print(f"reusing {folder}", file=sys.stderr)
    build_record = json.loads(marker.read_text())

    # a new cache per run: no text was asked before; the exported tower is linked in, not re-exported
    cache = Path(tempfile.mkdtemp(prefix="cache-run-", dir=args.work))
    os.symlink(args.work / "cache" / "text-towers", cache / "text-towers")
    run_env = {**env, "VIDSEARCH_CACHE": str(cache)}
    try:
        out = cache / "measured.json"
        print("measuring warm queries in a fresh process", file=sys.stderr, flush=True)
        subprocess.run([*own, "--role", "measure", "--out", str(out)], env=run_env, check=True)
        measured = json.loads(out.read_text())
        warm = warm_rows(measured, build_record["n"])
        print("measuring cold `vidsearch query` processes", file=sys.stderr, flush=True)
        cold = cold_rows(args, run_env, build_record["n"])
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print_tables(build_record, warm, cold)
    alone = measured["index_alone"]
    print(f"\nframe index search alone, k=10, one thread, {alone['queries']} texts one at a time: p50 "
          f"{alone['p50_ms']:.2f} ms, p95 {alone['p95_ms']:.2f} ms, recall@10 {alone['recall@10']:.3f} against "
          f"exact search (nprobe {alone['plan']['nprobe']}, shortlist {alone['plan']['rerank_factor']}x); the texts' "
          f"best exact score {alone['best_score']:.3f}, 10th minus 11th {alone['gap_10th_11th']:.4f}")
    print(f"\nnote: archive opened in {measured['open_ms']:.0f} ms in the warm process; {os.cpu_count()} CPUs, "
          f"load average (1 min) {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    if args.json:
        for row in [build_record, *warm, *cold, {"row": "index search alone", **measured["index_alone"]}]:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
