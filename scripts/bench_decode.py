"""Time the readers and sampling modes of vidsearch.decode on shared footage, all in one run.

Example:
    .venv/bin/python scripts/bench_decode.py --repeat 3
    .venv/bin/python scripts/bench_decode.py --files scenes/cctv_night_ir_hevc.mp4 --fps 2

Each mode decodes each file `--repeat` times, modes interleaved, and the best wall time counts, so load
from other processes skews all modes alike. "cpu s" is the CPU time of all the process's threads (the least
over the runs). "vs decord" is decord's seconds over the mode's (above 1 is faster). "px diff" is the largest
mean absolute difference, in 0-255 levels, between a mode's frame and decord's frame at the same index
(n/a where the indices differ, as keyframes' do).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchkit import add_footage_option
from vidsearch.decode import DecordDecoder, PyAVDecoder
from vidsearch.errors import DecodeError
from vidsearch.records import Frame

FILES = (
    "scenes/crowd_walking_1080p.mp4",
    "scenes/rknn_people-walking.mp4",
    "scenes/opencv_vtest_pets2009.avi",
    "scenes/intel_one-by-one-person-detection.mp4",
    "derived/intel_car-detection_hevc.mkv",
    "scenes/cctv_night_ir_hevc.mp4",
)

MODES: dict[str, Callable[[Path], object]] = {
    "decord time": DecordDecoder,
    # the default: non-reference frames between samples go undecoded, where the container's pts make that exact
    "pyav time": PyAVDecoder,
    "pyav time, every frame": lambda path: PyAVDecoder(path, skip_unpicked=False),
    # lossy: the picture drifts until the next keyframe; tried and left out of the default
    "pyav time, +no loop filter": lambda path: PyAVDecoder(path, codec_options={"skip_loop_filter": "all"}),
    "pyav keyframes": lambda path: PyAVDecoder(path, keyframes=True),
}


def run(open_decoder: Callable[[Path], object], path: Path, fps: float) -> tuple[float, float, list[Frame], float]:
    """Wall seconds, CPU seconds of all the process's threads, the frames, and the video's duration."""
    started, cpu = time.perf_counter(), time.process_time()
    with open_decoder(path) as decoder:
        frames = [frame for batch in decoder.frames(fps, batch_size=16) for frame in batch]
        duration = decoder.info.duration
    return time.perf_counter() - started, time.process_time() - cpu, frames, duration


def pixel_diff(frames: list[Frame], reference: list[Frame]) -> str:
    if [frame.index for frame in frames] != [frame.index for frame in reference]:
        return "n/a"
    worst = max(
        (np.abs(a.image.astype(np.int16) - b.image.astype(np.int16)).mean() for a, b in zip(frames, reference)),
        default=0.0,
    )
    return f"{worst:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser, "--videos")
    parser.add_argument("--files", nargs="+", default=list(FILES), help="paths under --footage")
    parser.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode and file; the best counts")
    args = parser.parse_args()
    for library in ("av", "decord"):  # the first mode to use a library would pay for its import
        importlib.import_module(library)
    logging.basicConfig(level=logging.ERROR)  # not a warning per run of a damaged file

    columns = ("seconds", 8), ("cpu s", 7), ("x-realtime", 10), ("frames", 6), ("vs decord", 9), ("px diff", 8)
    header = f"{'file':<44} {'mode':<27} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    totals = dict.fromkeys(MODES, 0.0)  # over the files that every mode decodes
    for name in args.files:
        path = args.footage / name
        best = dict.fromkeys(MODES, float("inf"))
        cpu = dict.fromkeys(MODES, float("inf"))
        frames: dict[str, list[Frame]] = {}
        failed: dict[str, str] = {}
        duration = 0.0
        for _ in range(args.repeat):
            for mode, open_decoder in MODES.items():
                try:
                    seconds, cpu_seconds, frames[mode], duration = run(open_decoder, path, args.fps)
                except DecodeError as error:
                    failed[mode] = error.reason
                    continue
                best[mode], cpu[mode] = min(best[mode], seconds), min(cpu[mode], cpu_seconds)
        for mode in MODES:
            if mode in failed:
                print(f"{name:<44} {mode:<27} failed: {failed[mode]}")
                continue
            versus = f"{best['decord time'] / best[mode]:.2f}" if "decord time" not in failed else "n/a"
            same = pixel_diff(frames[mode], frames["decord time"]) if "decord time" not in failed else "n/a"
            print(
                f"{name:<44} {mode:<27} {best[mode]:>8.3f} {cpu[mode]:>7.2f} {duration / best[mode]:>10.1f} "
                f"{len(frames[mode]):>6} {versus:>9} {same:>8}"
            )
        if not failed:
            for mode in MODES:
                totals[mode] += best[mode]
        print()
    for mode in MODES:
        ratio = totals["decord time"] / totals[mode] if totals[mode] else float("nan")
        print(f"{'all files':<44} {mode:<27} {totals[mode]:>8.3f} {'':>7} {'':>10} {'':>6} {ratio:>9.2f}")

if __name__ == "__main__":
    main()
