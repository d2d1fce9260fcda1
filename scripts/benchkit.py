"""What the scripts in this folder share: the footage, random CLIP weights, cached test videos, measured child
processes and aligned tables. Scripts run as `python scripts/NAME.py`, so this folder is first on sys.path."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOOTAGE = Path(os.environ.get("VIDSEARCH_FOOTAGE", REPO.parent / "shared" / "videos"))
# made once and kept between runs: random weights, long and 4K videos, the export archive
CACHE = Path(os.environ.get("VIDSEARCH_BENCH_CACHE", Path(tempfile.gettempdir()) / "vidsearch-bench"))
TINY_CONFIG = REPO / "tests" / "data" / "tiny-clip.json"
DEFAULT_YOLO_WEIGHTS = os.environ.get("VIDSEARCH_YOLO_WEIGHTS", "yolo11n.pt")


def add_footage_option(parser: argparse.ArgumentParser, *other_names: str) -> None:
    """`--footage` (and `other_names`, spellings a script accepted before): the folder holding scenes/ and unit/."""
    parser.add_argument("--footage", *other_names, type=Path, default=FOOTAGE,
                        help="the shared footage, which file names are relative to "
                             "(default: $VIDSEARCH_FOOTAGE, else shared/videos beside the repository)")


def cached(name: str, make: Callable[[Path], None]) -> Path:
    """CACHE/name, written by `make(path)` the first time. It writes a partial file, renamed once complete, so
    that a run stopped halfway leaves nothing a later run would take for finished."""
    target = CACHE / name
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial" + target.suffix)  # the suffix still names the container for PyAV
        make(partial)
        partial.rename(target)
    return target


def random_weights(model: str) -> tuple[str, str]:
    """(clip model, weights file) with random weights (torch.manual_seed(0)), made once into CACHE.

    `model` is 'tiny' (the tests' model config) or an open_clip architecture. Speed does not depend on the
    weights' values, so every benchmark loads this one file instead of downloading trained weights."""
    config = str(TINY_CONFIG) if model == "tiny" else model
    name = TINY_CONFIG.stem if model == "tiny" else model

    def make(path: Path) -> None:
        import open_clip  # only here: a measured process that finds the file imports neither
        import torch

        if model == "tiny":
            open_clip.add_model_config(TINY_CONFIG)
        torch.manual_seed(0)
        torch.save(open_clip.create_model(name).state_dict(), path)

    return config, str(cached(f"{name}-random.pt", make))


def looped_h264(
    footage: Path, files: list[str], seconds: float, size: tuple[int, int], rate: int, crf: int, name: str,
    paste_at: tuple[int, int] | None = None,
) -> Path:
    """The given clips scaled to `size` and re-encoded one after another, looped to `seconds` (made once).

    With `paste_at`, frames are not scaled but placed at that (x, y) in a mid-grey scene of `size`.
    """

    def make(path: Path) -> None:
        import av
        import numpy as np

        total = int(seconds * rate)
        with av.open(str(path), "w") as out:
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

    return cached(name, make)


def cut_clips(recording: Path, seconds: float) -> Path:
    """A folder of `recording` cut into clips of `seconds` each, re-encoded as a camera writes event clips
    (made once)."""

    def make(folder: Path) -> None:
        import av

        folder.mkdir()
        with av.open(str(recording)) as source:
            stream = source.streams.video[0]
            rate = stream.average_rate
            per_clip = round(seconds * rate)
            out = None
            for n, frame in enumerate(source.decode(stream)):
                if n % per_clip == 0:
                    if out is not None:
                        out.mux(clip.encode(None))
                        out.close()
                    out = av.open(str(folder / f"clip-{n // per_clip:03d}.mp4"), "w")
                    clip = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "23"})
                    clip.width, clip.height, clip.pix_fmt = frame.width, frame.height, "yuv420p"
                frame.pts, frame.time_base = n % per_clip, 1 / rate
                out.mux(clip.encode(frame))
            out.mux(clip.encode(None))
            out.close()

    return cached(f"{recording.stem}-clips-{seconds:g}s", make)


def measured_row(command: list[str]) -> dict:
    """Run a script's measured child process (offline YOLO) and return the JSON row it printed last."""
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_status(pid: int | str = "self") -> dict[str, int]:
    """The memory fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...) in bytes; empty once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in lines)
    return {key: int(value.split()[0]) * 1024 for key, value in fields if value.endswith(" kB")}


def timed_process(command: list[str], env: dict) -> tuple[float, str]:
    """(wall seconds, stderr) of a process from start to exit."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return wall, done.stderr


def query_timings(stderr: str) -> dict[str, float]:
    """The steps of `vidsearch query --timings` ("timings (ms): process start 120, open archive 690, ...")."""
    line = next(line for line in stderr.splitlines() if line.startswith("timings (ms): "))
    return {step.rsplit(" ", 1)[0]: float(step.rsplit(" ", 1)[1]) for step in line.split(": ", 1)[1].split(", ")}


def median_speedup(base: list[float], times: list[float]) -> float:
    """The median over rounds of base time / time: a round's load from other processes slows both alike."""
    return statistics.median(b / t for b, t in zip(base, times))


def interleaved(variants: dict[object, Callable], arg, rounds: int) -> dict:
    """{name: (median seconds, median per-round speed-up over the first variant)}; each round runs every variant
    once, so load from other processes hits them alike."""
    for fn in variants.values():
        fn(arg)  # warm-up: lazy init, allocations, compiles for this shape
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn(arg)
            times[name].append(time.perf_counter() - started)
    base = next(iter(times.values()))
    return {name: (statistics.median(t), median_speedup(base, t)) for name, t in times.items()}


def print_table(header: tuple | list, rows: list, rule: bool = False) -> None:
    """Rows of string cells in left-aligned columns two spaces apart; `rule`: a line of dashes under the header."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    if rule:
        lines.insert(1, "-" * len(lines[0]))
    print("\n".join(lines))
