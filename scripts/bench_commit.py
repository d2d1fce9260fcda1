"""What durability costs per committed video: SQLite synchronous=FULL and an fsync of the shard folder (what vidsearch
does) against synchronous=NORMAL without the folder fsync (safe against a killed process only), in the same run.

    python scripts/bench_commit.py --videos 200 --frames 60 --folder /tmp/bench-commit

Each video is a synthetic result of `--frames` frames with 512-d vectors, committed as an ingest commits one:
its Parquet shard written inside the catalog's transaction. Put `--folder` on the disk the archive will live on.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path
from unittest import mock

import numpy as np
from sqlalchemy import event

from benchkit import print_table
from vidsearch import shards as shards_module
from vidsearch.records import Item, ProcessedVideo, SampledFrame, VideoFile, VideoInfo
from vidsearch.shards import Shards
from vidsearch.store import Catalog


def commit_times(folder: Path, videos: int, frames: int, durable: bool) -> list[float]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    catalog = Catalog(folder / "catalog.sqlite")
    if not durable:  # runs after vidsearch's own connect hook, so it overrides synchronous=FULL
        event.listen(catalog.engine, "connect", lambda connection, _: connection.execute("PRAGMA synchronous=NORMAL"))
    catalog.ensure_schema()
    shards = Shards(folder / "shards")
    rng = np.random.default_rng(0)
    info = VideoInfo(duration=frames, fps=1.0, width=64, height=64, frame_count=frames, timeline="pts")
    seconds = []
    with mock.patch.object(shards_module, "sync_folder", shards_module.sync_folder if durable else lambda _: None):
        for number in range(videos):
            vectors = rng.standard_normal((frames, 512)).astype(np.float32)
            processed = ProcessedVideo(
                info=info, reader="pyav", sample_fps=1.0, frames=[SampledFrame(i, float(i)) for i in range(frames)],
                frames_skipped=0, persons=[], objects=[], appearances=[], frame_vectors=vectors,
                person_vectors=np.zeros((0, 512), np.float32),
            )

            def write_shard(video_id, frame_ids, _person_ids, vectors=vectors):
                items = [Item(int(i), "frame", n, float(n)) for n, i in enumerate(frame_ids)]
                shards.write(video_id, folder / f"{number}.mp4", items, vectors)

            started = time.perf_counter()
            catalog.replace_video(VideoFile(folder / f"{number}.mp4", 1, 1), f"f{number}", processed, write_shard)
            seconds.append(time.perf_counter() - started)
    catalog.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/vidsearch-bench-commit"))
    args = parser.parse_args()
    rows = []
    for label, durable in (("NORMAL, no folder fsync (before)", False), ("FULL + folder fsync (vidsearch)", True)):
        seconds = commit_times(args.folder, args.videos, args.frames, durable)
        rows.append((label, statistics.median(seconds) * 1000, max(seconds) * 1000))
    baseline = rows[0][1]
    print_table(
        ("commit of one video", "median ms", "worst ms", "x baseline"),
        [(label, f"{median:.2f}", f"{worst:.2f}", f"{median / baseline:.2f}") for label, median, worst in rows],
    )
    shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
