"""Peak memory of an ingest: an hour-long file and a 4K file, each ingested alone, as a table.

    python scripts/bench_memory.py --yolo-weights /models/yolo11n.pt
    python scripts/bench_memory.py --yolo-weights yolo11n.pt --minutes 10 60 --uhd-seconds 30

The long files repeat scenes/intel_one-by-one-person-detection.mp4 (768x432, 139 s) by stream copy, so they
take seconds to make; the 4K file is scenes/rknn_people-walking.mp4 scaled to 3840x2160 and looped (H.264,
made once). Files are cached in $VIDSEARCH_BENCH_CACHE (default: the temp folder's vidsearch-bench).

Each row runs in its own process, with the tests' tiny random-weight CLIP and the given YOLO on CPU.
"ingest MB" is that process's peak RSS, "decoder MB" the decode worker's (its VmHWM), "sum MB" the peak of
both together (sampled every 50 ms). A bounded ingest holds about the same for 10 minutes as for an hour: no pixels are kept
past their batch, only each kept frame's vector.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchkit import (
    DEFAULT_YOLO_WEIGHTS, add_footage_option, cached, looped_h264, measured_row, memory_status, peak_rss_mb,
    random_weights,
)

LONG_SOURCE = "scenes/intel_one-by-one-person-detection.mp4"
UHD_SOURCE = "scenes/rknn_people-walking.mp4"


def long_file(footage: Path, minutes: float) -> Path:
    """LONG_SOURCE's packets copied over and over, timestamps shifted, until `minutes` of video (made once)."""

    def make(path: Path) -> None:
        import av

        with av.open(str(footage / LONG_SOURCE)) as source:
            stream = source.streams.video[0]
            period = max(p.pts + p.duration for p in source.demux(stream) if p.dts is not None)
            repeats = int(minutes * 60 / float(period * stream.time_base)) + 1
        with av.open(str(path), "w") as out:
            for repeat in range(repeats):
                with av.open(str(footage / LONG_SOURCE)) as source:
                    stream = source.streams.video[0]
                    if not repeat:
                        copy = out.add_stream_from_template(stream)
                    for packet in source.demux(stream):
                        if packet.dts is None:
                            continue
                        packet.stream = copy
                        packet.pts += repeat * period
                        packet.dts += repeat * period
                        out.mux(packet)

    return cached(f"long-copy-{minutes:g}min.mp4", make)


def resident(pid: int) -> tuple[int, int]:
    """A process's resident bytes now and at their peak (VmRSS, VmHWM; 0 once it is gone)."""
    status = memory_status(pid)
    return status.get("VmRSS", 0), status.get("VmHWM", 0)


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return children


def one(args) -> None:
    """The measured process: one ingest into a fresh archive; prints a JSON row."""
    from vidsearch import Archive

    peak = {"sum": 0, "decoder": 0}

    def sample() -> None:
        # a child's own ru_maxrss counts the parent's pages it was forked with: its VmHWM after exec does not
        while True:
            children = [resident(child) for child in _children(os.getpid())]
            peak["sum"] = max(peak["sum"], resident(os.getpid())[0] + sum(now for now, _ in children))
            peak["decoder"] = max([peak["decoder"], *(high for _, high in children)])
            time.sleep(0.05)

    clip_model, weights = random_weights("tiny")  # made by the parent: here only its path
    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as folder, Archive.open(
        folder, clip_model=clip_model, clip_pretrained=weights, yolo_weights=args.yolo_weights, device="cpu",
    ) as archive:
        archive.embedder(), archive.detector()  # model loading is not ingest
        loaded = peak_rss_mb()
        report = archive.ingest([Path(args.one)], fps=args.fps, persons=args.persons)
    if report.failed:
        raise SystemExit(f"{args.one}: {report.failed[0][1]}")
    print(json.dumps({
        "video_s": report.video_seconds, "wall_s": report.wall_seconds, "frames": report.frames,
        "skipped": report.frames_skipped, "persons": report.persons, "models_mb": loaded,
        "ingest_mb": peak_rss_mb(),
        "decoder_mb": peak["decoder"] / 2**20, "sum_mb": peak["sum"] / 2**20,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser, "--videos")
    parser.add_argument("--yolo-weights", default=DEFAULT_YOLO_WEIGHTS)
    parser.add_argument("--minutes", type=float, nargs="*", default=[10, 60], help="lengths of the long files")
    parser.add_argument("--uhd-seconds", type=float, default=30, help="length of the 4K file (0: none)")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--no-persons", dest="persons", action="store_false", help="whole frames only")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)

    files = [long_file(args.footage, minutes) for minutes in args.minutes]
    if args.uhd_seconds:
        files.append(looped_h264(args.footage, [UHD_SOURCE], args.uhd_seconds, (3840, 2160), 30, 28,
                                 f"uhd-{args.uhd_seconds:g}s.mp4"))
    random_weights("tiny")  # made here if missing, not inside the first measured process
    print(f"CLIP tiny (random weights), YOLO {Path(args.yolo_weights).name}, persons {'on' if args.persons else 'off'}, "
          f"--fps {args.fps:g}, CPU threads {os.cpu_count()}")
    header = (f"{'file':24s} {'size':>9s} {'video s':>8s} {'wall s':>7s} {'frames':>6s} {'dups':>5s} "
              f"{'models MB':>9s} {'ingest MB':>9s} {'decoder MB':>10s} {'sum MB':>7s}")
    print(header)
    print("-" * len(header))
    import av

    for path in files:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            size = f"{video.codec_context.width}x{video.codec_context.height}"
        command = [sys.executable, __file__, "--one", str(path), "--yolo-weights", args.yolo_weights,
                   "--fps", str(args.fps)]
        if not args.persons:
            command.append("--no-persons")
        row = measured_row(command)
        print(f"{path.name[:24]:24s} {size:>9s} {row['video_s']:8.0f} {row['wall_s']:7.1f} {row['frames']:6d} "
              f"{row['skipped']:5d} {row['models_mb']:9.0f} {row['ingest_mb']:9.0f} {row['decoder_mb']:10.0f} "
              f"{row['sum_mb']:7.0f}")
    print("models MB: the ingest process's peak RSS once the models are loaded, before the ingest")


if __name__ == "__main__":
    main()
