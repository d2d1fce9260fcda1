"""Ingest speed: vidsearch's pipeline against the naive per-frame loop, in the same run, as a table.

    python scripts/bench_ingest.py --footage ../shared/videos --yolo-weights yolo11n.pt --model ViT-B-32
    python scripts/bench_ingest.py --footage ../shared/videos --files --small-persons 30 --no-baseline

`--small-persons` adds vtest's first seconds pasted unscaled into static 1080p and 4K scenes, a static camera
whose people are far away, each ingested with the detector's tiles as configured and with tiles off.

Each row runs in its own process, so its peak RSS is its own. CLIP weights are random (speed does not depend
on their values): `tiny` is the tests' model, `ViT-B-32` the real architecture of the default model.
The naive loop decodes every frame and embeds each one alone, as the blog tool this project grew from did.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

DEFAULT_FILES = (
    "scenes/opencv_vtest_pets2009.avi",
    "scenes/intel_one-by-one-person-detection.mp4",
    "scenes/rknn_people-walking.mp4",
    "scenes/crowd_walking_1080p.mp4",
)
CACHE = Path(os.environ.get("VIDSEARCH_BENCH_CACHE", Path(tempfile.gettempdir()) / "vidsearch-bench"))
TINY_CONFIG = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny-clip.json"


def random_weights(model: str) -> tuple[str, str]:
    """(clip model, weights file) with random weights, made once and cached."""
    import open_clip
    import torch

    config = str(TINY_CONFIG) if model == "tiny" else model
    name = TINY_CONFIG.stem if model == "tiny" else model
    weights = CACHE / f"{name}-random.pt"
    if not weights.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        if model == "tiny":
            open_clip.add_model_config(TINY_CONFIG)
        torch.manual_seed(0)
        torch.save(open_clip.create_model(name).state_dict(), weights)
    return config, str(weights)


def looped_h264(
    footage: Path, files: list[str], seconds: float, size: tuple[int, int], rate: int, crf: int, name: str,
    paste_at: tuple[int, int] | None = None,
) -> Path:
    """The given clips scaled to `size` and re-encoded one after another, looped to `seconds` (made once).

    With `paste_at`, frames are not scaled but placed at that (x, y) in a mid-grey scene of `size`.
    """
    import av
    import numpy as np

    target = CACHE / name
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.mp4")
    total = int(seconds * rate)
    with av.open(str(partial), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        written = 0
        while written < total:
            for rel in files:
                with av.open(str(footage / rel)) as source:
                    for frame in source.decode(video=0):
                        if paste_at is None:
                            image = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                        else:
                            (x, y), pixels = paste_at, frame.to_ndarray(format="rgb24")
                            scene = np.full((size[1], size[0], 3), 128, np.uint8)
                            scene[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
                            image = av.VideoFrame.from_ndarray(scene, format="rgb24").reformat(format="yuv420p")
                        image.pts, image.time_base = written, Fraction(1, rate)
                        out.mux(stream.encode(image))
                        written += 1
                        if written >= total:
                            break
                if written >= total:
                    break
        out.mux(stream.encode(None))
    partial.rename(target)
    return target


def run_pipeline(path: Path, clip: tuple[str, str], yolo: str, persons: bool, tiles: str | None) -> dict:
    from dataclasses import replace

    from vidsearch import Archive
    from vidsearch.config import load_settings

    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(Path(folder), clip_model=clip[0], clip_pretrained=clip[1], yolo_weights=yolo,
                                 device="cpu")
        if tiles is not None:
            settings = replace(settings, detector=replace(settings.detector, tiles=tiles))
        archive = Archive(settings)
        with archive:
            archive.embedder(), archive.detector()  # model loading is not ingest time
            report = archive.ingest([path], persons=persons)
    if report.failed:
        raise SystemExit(f"{path}: {report.failed[0][1]}")
    seconds = report.seconds
    return {
        "video_s": report.video_seconds, "wall_s": report.wall_seconds,
        "sampled": report.frames + report.frames_skipped, "frames": report.frames,
        "persons": report.persons, "crops": report.person_vectors,
        "decode_s": seconds.decode, "detect_s": seconds.detect, "embed_s": seconds.embed, "write_s": seconds.write,
    }


def run_naive(path: Path, clip: tuple[str, str], seconds_of_video: float) -> dict:
    """Read a frame, run CLIP on it alone, repeat: every frame, for the first `seconds_of_video`."""
    import decord

    from vidsearch.config import ClipConfig
    from vidsearch.embed import ClipEmbedder

    # the blog tool runs plain fp32 PyTorch, one frame at a time
    embedder = ClipEmbedder(ClipConfig(model=clip[0], pretrained=clip[1], batch_size=1, precision="fp32"), "cpu")
    reader = decord.VideoReader(str(path))
    fps = reader.get_avg_fps()
    count = min(len(reader), int(seconds_of_video * fps))
    started = time.perf_counter()
    for _ in range(count):
        embedder.embed_images([reader.next().asnumpy()])
    wall = time.perf_counter() - started
    return {"video_s": count / fps, "wall_s": wall, "sampled": count, "frames": count, "persons": 0, "crops": 0}


def one(args) -> None:
    clip = random_weights(args.model)
    path = Path(args.one)
    if args.naive:
        row = run_naive(path, clip, args.naive_seconds)
    else:
        row = run_pipeline(path, clip, args.yolo_weights, args.persons, args.tiles)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(row))


def measure(path: Path, args, *extra: str) -> dict:
    command = [sys.executable, __file__, "--one", str(path), "--model", args.model,
               "--yolo-weights", args.yolo_weights, "--naive-seconds", str(args.naive_seconds), *extra]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:7.1f}" if seconds > 0 else "      -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--footage", type=Path, help="folder the file names are relative to")
    parser.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    parser.add_argument("--model", default="ViT-B-32", help="'tiny' or an open_clip architecture (random weights)")
    parser.add_argument("--yolo-weights", default=os.environ.get("VIDSEARCH_YOLO_WEIGHTS", "yolo11n.pt"))
    parser.add_argument("--long-minutes", type=float, default=0, help="also a file of the clips concatenated")
    parser.add_argument("--naive-seconds", type=float, default=20.0, help="video seconds the naive loop runs on")
    parser.add_argument("--small-persons", type=float, default=0, metavar="SECONDS",
                        help="also vtest's first SECONDS pasted into static 1080p and 4K scenes, tiles on and off")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", action="store_true", help="print rows as JSON lines too")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-persons", dest="persons", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument("--tiles", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)
    if args.footage is None:
        parser.error("--footage is required")

    paths = [args.footage / f for f in args.files]
    if args.long_minutes:
        # steady state: the clips one after another at 1280x720
        paths.append(looped_h264(args.footage, args.files, args.long_minutes * 60, (1280, 720), 25, 23,
                                 f"long-{args.long_minutes:g}min.mp4"))
    pasted = {}
    if args.small_persons:
        for size, at in (((1920, 1080), (576, 252)), ((3840, 2160), (1500, 900))):
            name = f"vtest-in-{size[1]}p-{args.small_persons:g}s.mp4"
            pasted[looped_h264(args.footage, [DEFAULT_FILES[0]], args.small_persons, size, 10, 18, name, at)] = at
    paths += list(pasted)
    print(f"model {args.model} (random weights), YOLO {Path(args.yolo_weights).name}, CPU threads {os.cpu_count()}")
    header = (f"{'video':38s} {'mode':10s} {'video s':>7s} {'wall s':>7s} {'x real':>7s} {'decode':>7s} "
              f"{'detect':>7s} {'embed':>7s} {'write':>7s} {'frames':>6s} {'dups':>5s} {'persons':>7s} "
              f"{'crops':>5s} {'wall/mdl':>8s} {'RSS MB':>7s} {'vs naive':>8s}")
    print(header)
    print("-" * len(header))
    for path in paths:
        rows = [("default", measure(path, args))]
        rows.append(("no tiles", measure(path, args, "--tiles", "off")) if path in pasted else
                    ("frames", measure(path, args, "--no-persons")))
        if not args.no_baseline:
            rows.append(("naive", measure(path, args, "--naive")))
        naive_speed = rows[-1][1]["video_s"] / rows[-1][1]["wall_s"] if not args.no_baseline else None
        for mode, row in rows:
            speed = row["video_s"] / row["wall_s"]
            model_s = row.get("detect_s", 0) + row.get("embed_s", 0)
            print(
                f"{path.name[:38]:38s} {mode:10s} {row['video_s']:7.1f} {row['wall_s']:7.1f} {speed:7.1f} "
                f"{rate(row['sampled'], row.get('decode_s', 0))} {rate(row['frames'], row.get('detect_s', 0))} "
                f"{rate(row['frames'] + row['crops'], row.get('embed_s', 0))} "
                f"{rate(row['frames'], row.get('write_s', 0))} {row['frames']:6d} "
                f"{row['sampled'] - row['frames']:5d} {row['persons']:7d} {row['crops']:5d} "
                f"{(row['wall_s'] / model_s if model_s else 0):8.2f} {row['peak_rss_mb']:7.0f} "
                f"{(speed / naive_speed if naive_speed else 0):8.1f}"
            )
            if args.json:
                print(json.dumps({"video": path.name, "mode": mode, **row}))
    print("decode/detect/embed/write: frames (or images) per second of that stage's own time;"
          " wall/mdl: wall time over detect+embed time; vs naive: x-realtime over the naive loop's")


if __name__ == "__main__":
    main()
