"""`watch`: files written slowly into a watched folder are indexed once they settle, whole and once; a file that
grows is indexed again, a removed one pruned; a restart resumes; a running server sees what a watcher commits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared_files import VIDEOS, decode_workers
from vidsearch.events import VideoIndexed, VideoSkipped
from vidsearch.watch import VideoRemoved, Watcher

CLIP = VIDEOS / "unit" / "intel_asl_thanks.mkv"  # 1.7 s, 126 KB
LONGER = VIDEOS / "unit" / "intel_asl_book.mkv"  # 3.7 s


def write_slowly(source: Path, target: Path, pieces: int = 6, pause_s: float = 0.8) -> None:
    """As a recorder does: the file grows for several seconds before it is whole."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for i in range(pieces):
            out.write(data[i * len(data) // pieces : (i + 1) * len(data) // pieces])
            out.flush()
            time.sleep(pause_s)


def wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


class Watching:
    """A Watcher over `folder` in a thread of its own, recording its events."""

    def __init__(self, archive, folder: Path):
        self.events: list = []
        self.watcher = Watcher(
            archive, [folder], settle_s=2.0, prune=True, poll_s=1.0, ingest_options={"persons": False},
            on_event=self.events.append,
        )
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)

    def __enter__(self) -> Watching:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.watcher.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()

    def of(self, kind, path: Path) -> list:
        return [e for e in self.events if isinstance(e, kind) and e.path == path]


def test_watch_indexes_a_slowly_written_file_once_and_whole_and_keeps_up_with_changes(tmp_path, options):
    from vidsearch import Archive

    folder = tmp_path / "recordings"
    (folder / "cam1").mkdir(parents=True)
    first = folder / "cam1" / "2024-05-01_14-00-00.mkv"
    others = decode_workers()  # of archives other tests left open
    with Archive.open(tmp_path / "archive", **options) as archive, Watching(archive, folder) as watching:
        write_slowly(CLIP, first)
        wait_for(lambda: watching.of(VideoIndexed, first))
        [decoding] = decode_workers() - others
        time.sleep(3)  # a few more rounds: nothing is indexed twice
        assert len(watching.of(VideoIndexed, first)) == 1
        stored = archive.catalog.video(first)
        assert stored.size == CLIP.stat().st_size and stored.origin.camera == "cam1"
        assert watching.of(VideoIndexed, first)[0].video_seconds == pytest.approx(1.7, abs=0.1)

        write_slowly(LONGER, first, pieces=3)  # the recorder rewrote it: indexed again, once
        wait_for(lambda: len(watching.of(VideoIndexed, first)) == 2)
        assert archive.catalog.video(first).size == LONGER.stat().st_size
        assert decode_workers() == others | {decoding}  # the rounds share one decode process, not one each

        first.unlink()
        wait_for(lambda: watching.of(VideoRemoved, first))
        assert archive.catalog.video(first) is None
    assert decode_workers() == others  # closing the archive ended it

    second = folder / "cam1" / "2024-05-01_14-05-00.mkv"
    shutil.copy(CLIP, second)
    third = folder / "cam2" / "2024-05-01_14-05-00.mkv"
    with Archive.open(tmp_path / "archive", **options) as archive, Watching(archive, folder) as watching:
        wait_for(lambda: watching.of(VideoIndexed, second))
        write_slowly(CLIP, third, pieces=3)
        wait_for(lambda: watching.of(VideoIndexed, third))
    with Archive.open(tmp_path / "archive", **options) as archive, Watching(archive, folder) as watching:
        wait_for(lambda: len(watching.of(VideoSkipped, second)) == 1 and watching.of(VideoSkipped, third))
        time.sleep(2)
        assert not [e for e in watching.events if isinstance(e, VideoIndexed)]  # a restart doubles nothing
        assert archive.stats().videos == 2 and archive.stats().frames == 4


def test_a_running_server_sees_a_file_a_watcher_commits(tmp_path, options):
    """A `vidsearch watch` process commits; the server, started before, finds the new video, filtered or not."""
    from fastapi.testclient import TestClient

    from vidsearch import Archive
    from vidsearch.serve.app import create_app

    folder, archive_folder = tmp_path / "recordings", tmp_path / "archive"
    first = folder / "cam1" / "2024-05-01_14-00-00.mkv"
    first.parent.mkdir(parents=True)
    shutil.copy(CLIP, first)
    flags = ["--index", str(archive_folder), "--clip-model", options["clip_model"], "--clip-pretrained",
             options["clip_pretrained"], "--yolo-weights", options["yolo_weights"], "--device", "cpu"]
    subprocess.run([sys.executable, "-m", "vidsearch", *flags, "ingest", str(folder), "--no-persons"], check=True)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "vidsearch", *flags, "watch", str(folder), "--no-persons", "--settle", "1",
         "--poll", "1", "--json"], stdout=subprocess.PIPE, text=True, env={**os.environ},
    )
    try:
        with Archive.open(archive_folder, **options) as archive, TestClient(create_app(archive)) as client:
            def videos(**filters) -> set[str]:
                params = {"q": "x", "k": 100, "kind": "frame", **filters}
                return {hit["video"] for hit in client.get("/api/search", params=params).json()["hits"]}

            assert videos() == {str(first)}
            second = folder / "cam2" / "2024-05-01_14-05-00.mkv"
            write_slowly(CLIP, second, pieces=3)
            for line in watcher.stdout:  # the watcher's commit
                if '"indexed"' in line and str(second) in line:
                    break
            committed = time.monotonic()
            wait_for(lambda: str(second) in videos(), timeout_s=10)
            assert time.monotonic() - committed < 10
            assert videos(camera="cam2") == {str(second)}
            assert videos(camera="cam*") == videos() == {str(first), str(second)}
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
