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
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import CACHE, TINY_CONFIG, looped_h264, random_weights  # noqa: E402  the same cached files
LONG_SOURCE = "scenes/intel_one-by-one-person-detection.mp4"
UHD_SOURCE = "scenes/rknn_people-walking.mp4"


def long_file(videos: Path, minutes: float) -> Path:
    """LONG_SOURCE's packets copied over and over, timestamps shifted, until `minutes` of video."""
    import av

    target = CACHE / f"long-copy-{minutes:g}min.mp4"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.mp4")
    with av.open(str(videos / LONG_SOURCE)) as source:
        stream = source.streams.video[0]
        period = max(p.pts + p.duration for p in source.demux(stream) if p.dts is not None)
        repeats = int(minutes * 60 / float(period * stream.time_base)) + 1
    with av.open(str(partial), "w") as out:
        for repeat in range(repeats):
            with av.open(str(videos / LONG_SOURCE)) as source:
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
    partial.rename(target)
    return target


def resident(pid: int) -> tuple[int, int]:
    """A process's resident bytes now and at their peak (VmRSS, VmHWM; 0 once it is gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except OSError:
        return 0, 0
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


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

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as folder, Archive.open(
        folder, clip_model=str(TINY_CONFIG), clip_pretrained=args.clip_weights, yolo_weights=args.yolo_weights,
        device="cpu",
    ) as archive:
        archive.embedder(), archive.detector()  # model loading is not ingest
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report = archive.ingest([Path(args.one)], fps=args.fps, persons=args.persons)
    if report.failed:
        raise SystemExit(f"{args.one}: {report.failed[0][1]}")
    print(json.dumps({
        "video_s": report.video_seconds, "wall_s": report.wall_seconds, "frames": report.frames,
        "skipped": report.frames_skipped, "persons": report.persons, "models_mb": loaded,
        "ingest_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "decoder_mb": peak["decoder"] / 2**20, "sum_mb": peak["sum"] / 2**20,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=VIDEOS, help="the shared footage")
    parser.add_argument("--yolo-weights", default=os.environ.get("VIDSEARCH_YOLO_WEIGHTS", "yolo11n.pt"))
    parser.add_argument("--minutes", type=float, nargs="*", default=[10, 60], help="lengths of the long files")
    parser.add_argument("--uhd-seconds", type=float, default=30, help="length of the 4K file (0: none)")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--no-persons", dest="persons", action="store_false", help="whole frames only")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--clip-weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)

    files = [long_file(args.videos, minutes) for minutes in args.minutes]
    if args.uhd_seconds:
        files.append(looped_h264(args.videos, [UHD_SOURCE], args.uhd_seconds, (3840, 2160), 30, 28,
                                 f"uhd-{args.uhd_seconds:g}s.mp4"))
    _, weights = random_weights("tiny")
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
        command = [sys.executable, __file__, "--one", str(path), "--clip-weights", weights,
                   "--yolo-weights", args.yolo_weights, "--fps", str(args.fps)]
        if not args.persons:
            command.append("--no-persons")
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{path.name[:24]:24s} {size:>9s} {row['video_s']:8.0f} {row['wall_s']:7.1f} {row['frames']:6d} "
              f"{row['skipped']:5d} {row['models_mb']:9.0f} {row['ingest_mb']:9.0f} {row['decoder_mb']:10.0f} "
              f"{row['sum_mb']:7.0f}")
    print("models MB: the ingest process's peak RSS once the models are loaded, before the ingest")


if __name__ == "__main__":
    main()
