"""What makes a committed video survive a power cut, not only a killed process (README, "What survives what"): the
catalog commits with SQLite's synchronous=FULL in WAL mode, and a shard is on disk, then renamed into place, then
its folder's entry flushed. A power cut cannot be made here; what the operating system was asked to do is checked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
from sqlalchemy import text

from vidsearch.records import Item
from vidsearch.shards import Shards
from vidsearch.store import Catalog


def test_every_catalog_connection_commits_in_wal_mode_with_full_sync(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.ensure_schema()
    for _ in range(2):  # each new connection, not only the first
        with catalog.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            # 2 = FULL: a WAL commit is synced before it returns; NORMAL (1) syncs only at checkpoints
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2
        catalog.engine.dispose()


def test_a_shard_is_synced_before_its_rename_and_its_folder_after(tmp_path, monkeypatch):
    calls: list[tuple] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(descriptor: int) -> None:
        status = os.fstat(descriptor)
        calls.append(("fsync", status.st_ino, stat.S_ISDIR(status.st_mode)))
        fsync(descriptor)

    def recording_replace(source, target) -> None:
        calls.append(("replace", Path(source).stat().st_ino, Path(target).name))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    shards = Shards(tmp_path / "shards")
    items = [Item(vector_id=7, kind="frame", frame_index=0, t=0.0)]
    shards.write(3, tmp_path / "clip.mp4", items, np.ones((1, 4), np.float32))
    folder = (tmp_path / "shards").stat().st_ino
    shard = shards.path(3).stat().st_ino  # the rename keeps the written file's inode
    renamed = calls.index(("replace", shard, shards.path(3).name))
    assert ("fsync", shard, False) in calls[:renamed], calls  # the data is on disk before the name points at it
    assert ("fsync", folder, True) in calls[renamed:], calls  # and the new name is on disk after the rename
