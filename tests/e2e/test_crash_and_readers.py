"""A video replaced by a process killed in the middle stays whole; a reader sees what another process committed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np

from shared_files import VIDEOS, footage_folder
from vidsearch import Archive
from vidsearch.search import SearchFilter

CLIPS = ("unit/intel_asl_thanks.mkv", "unit/intel_asl_book.mkv")


def vidsearch_command(archive, options, *args) -> list[str]:
    return [
        sys.executable, "-m", "vidsearch", "--index", str(archive), "--clip-model", options["clip_model"],
        "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"],
        "--device", "cpu", *args,
    ]


def saved_index_ids(folder, kind: str) -> set[int]:
    """The ids in an index file as saved, read without opening the archive (which would repair it first)."""
    from vidsearch.index import IndexMeta, VectorIndex

    saved = json.loads((folder / f"{kind}.json").read_text())
    meta = IndexMeta(saved["factory"], saved["dim"], saved["model"], saved["weights"])
    return set(VectorIndex(folder / f"{kind}.faiss", meta).ids().tolist())


def catalog_and_shards(folder) -> dict:
    """Each indexed video's fingerprint, its vector ids in the catalog, and the ids its shard holds."""
    with Archive.open(folder, device="cpu") as archive:
        videos = {}
        for video in archive.catalog.videos(status="indexed"):
            ids = archive.catalog.vector_ids_of_video(video.id)
            cataloged = sorted(ids["frame"].tolist() + ids["person"].tolist())
            shard = sorted(archive.shards.read([video.id]).ids.tolist())
            videos[video.path.name] = (video.fingerprint, cataloged, shard)
        return videos


def test_killed_as_the_new_shard_of_the_newest_video_lands_the_archive_keeps_the_old_version(tmp_path, options):
    root = footage_folder(tmp_path / "footage", *CLIPS)
    archive = tmp_path / "archive"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ingest = vidsearch_command(archive, options, "ingest", str(root), "--fps", "2", "--no-persons")
    subprocess.run(ingest, check=True, capture_output=True, env=env)
    before = catalog_and_shards(archive)
    with Archive.open(archive, device="cpu") as opened:
        newest = max(opened.catalog.videos(), key=lambda video: video.id).path
    # a recorder's file that grew: the same path, other content
    shutil.copy(VIDEOS / "unit/intel_asl_walk.mkv", newest)

    killed = subprocess.run(ingest, capture_output=True, env={**env, "VIDSEARCH_CRASH_AT": "shard-written"})
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    subprocess.run(vidsearch_command(archive, options, "index", "rebuild"), check=True, capture_output=True, env=env)
    after_kill = catalog_and_shards(archive)
    assert after_kill == before  # the old version, wholly: its frames in the catalog and in its shard
    for fingerprint, cataloged, shard in after_kill.values():
        assert cataloged == shard and len(cataloged) > 0
    assert saved_index_ids(archive, "frame") == {i for _, ids, _ in after_kill.values() for i in ids}

    subprocess.run(ingest, check=True, capture_output=True, env=env)
    resumed = catalog_and_shards(archive)
    assert resumed[newest.name][0] != before[newest.name][0]  # now the new version, wholly
    for fingerprint, cataloged, shard in resumed.values():
        assert cataloged == shard and len(cataloged) > 0
    assert saved_index_ids(archive, "frame") == {i for _, ids, _ in resumed.values() for i in ids}
    assert sorted(path.name for path in (archive / "shards").iterdir()) == sorted(
        f"video-{video_id:09d}.parquet" for video_id in _indexed_ids(archive)
    )


def _indexed_ids(folder) -> list[int]:
    with Archive.open(folder, device="cpu") as archive:
        return [video.id for video in archive.catalog.videos(status="indexed")]


def test_a_reader_sees_what_another_process_committed_filtered_or_not(tmp_path, options):
    root = footage_folder(tmp_path / "footage", CLIPS[0])
    later = footage_folder(tmp_path / "later", CLIPS[1])
    with Archive.open(tmp_path / "archive", **options) as reader:
        reader.ingest([root], persons=False)
        probe = reader.embedder().embed_images([np.full((64, 64, 3), 128, np.uint8)])
        assert {hit.video for hit in reader.search_vectors(probe, k=50, group=False)[0]} == {root / CLIPS[0]}
        with Archive.open(tmp_path / "archive", **options) as writer:  # another process, as `vidsearch ingest`
            writer.ingest([later], persons=False)
        newcomer = later / CLIPS[1]
        frames = reader.catalog.vector_ids_of_video(reader.catalog.video(newcomer).id)["frame"]
        everywhere = reader.search_vectors(probe, k=len(frames) + 100, group=False)[0]
        only_new = reader.search_vectors(probe, k=len(frames), group=False, where=SearchFilter(videos=str(newcomer)))[0]
        assert {hit.item.vector_id for hit in only_new} == set(frames.tolist())
        assert set(frames.tolist()) <= {hit.item.vector_id for hit in everywhere}
