"""Index management on an archive: build a trained index from the shards, measure its recall, reopen it,
rebuild it, and recover from a corrupt file; through the real catalog, Parquet shards and FAISS."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from vidsearch import Archive
from vidsearch.cli import cli
from vidsearch.records import ProcessedVideo, SampledFrame, VideoFile, VideoInfo

VIDEOS, FRAMES_PER_VIDEO = 8, 2500  # 20 000 frame vectors: enough to train IVF lists


def clustered(rng: np.random.Generator, n: int, dim: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around a few shared centres, as embeddings of similar scenes are."""
    vectors = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def large_archive(tmp_path_factory, options):
    """An archive of synthetic frame vectors committed the way an ingest commits a video."""
    folder = tmp_path_factory.mktemp("large")
    archive = Archive.open(folder, **options)
    dim = archive.embedder().identity.dim
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    info = VideoInfo(duration=FRAMES_PER_VIDEO, fps=1.0, width=64, height=64, frame_count=FRAMES_PER_VIDEO,
                     timeline="pts")
    for number in range(VIDEOS):
        result = ProcessedVideo(
            info=info, reader="pyav", sample_fps=1.0,
            frames=[SampledFrame(i, float(i)) for i in range(FRAMES_PER_VIDEO)],
            frames_skipped=0, persons=[], objects=[], appearances=[],
            frame_vectors=clustered(rng, FRAMES_PER_VIDEO, dim, centres),
            person_vectors=np.zeros((0, dim), np.float32),
        )
        video = VideoFile(path=folder / f"camera-{number}.mp4", size=1, mtime_ns=1)
        archive.services.ingester.commit(video, f"synthetic-{number}", result)
    archive.save_indexes()
    yield archive
    archive.close()


def test_a_trained_index_is_built_from_the_shards_with_its_recall_measured(large_archive, options):
    archive = large_archive
    assert archive.index_report("frame").to_json()["index"] == "flat"
    probe = archive.shards.read([1]).vectors[:5]
    exact = archive.search_vectors(probe, k=10, kind="frame", group=False)

    [report] = archive.build_index("ivf-sq8", vectors=["frame"]).values()
    row = report.to_json()
    assert (row["index"], row["count"]) == ("ivf-sq8", VIDEOS * FRAMES_PER_VIDEO)
    # widened to 0.96 on the other halves, ~100 queries spread ~0.01; held out: half the 200 stored and the texts
    assert row["recall@10"] >= 0.9 and row["recall_queries"] > 100
    assert row["bytes_per_vector"] < 4 * probe.shape[1]  # codes of one byte per dim, not float32
    trained = archive.search_vectors(probe, k=10, kind="frame", group=False)
    assert [h[0].item.vector_id for h in trained] == [h[0].item.vector_id for h in exact]  # each finds itself

    with Archive.open(archive.folder, **options) as reopened:
        assert reopened.index_report("frame").to_json()["index"] == "ivf-sq8"
        again = reopened.search_vectors(probe, k=10, kind="frame", group=False)
        assert [[h.item.vector_id for h in row] for row in again] == [[h.item.vector_id for h in row] for row in trained]
        rebuilt = reopened.rebuild_index()["frame"]
        assert rebuilt.to_json()["index"] == "ivf-sq8"  # a rebuild keeps the kind the index was

    result = CliRunner().invoke(cli, ["--index", str(archive.folder), "--clip-model", options["clip_model"],
                                      "--clip-pretrained", options["clip_pretrained"], "index", "info", "--json"])
    assert result.exit_code == 0, result.output
    frame, person = json.loads(result.output)
    assert frame["index"] == "ivf-sq8" and frame["recall@10"] >= 0.9 and person["index"] == "flat"


def test_a_corrupt_index_file_is_rebuilt_from_the_shards(large_archive, options, caplog):
    path = large_archive.folder / "frame.faiss"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with caplog.at_level(logging.WARNING, logger="vidsearch"), Archive.open(large_archive.folder, **options) as archive:
        index = archive.indexes()["frame"]
        assert index.size == VIDEOS * FRAMES_PER_VIDEO
        assert "unreadable" in caplog.text and str(path) in caplog.text
        probe = archive.shards.read([2]).vectors[:3]
        # re-ranked from float16 copies: a vector's own score is within 2**-11 of 1
        assert [row[0].score for row in archive.search_vectors(probe, k=1, kind="frame", group=False)] == pytest.approx(
            [1.0] * 3, abs=1e-3
        )


def test_a_memory_budget_too_small_is_refused_in_one_line(large_archive, options):
    result = CliRunner().invoke(cli, ["--index", str(large_archive.folder), "--clip-model", options["clip_model"],
                                      "--clip-pretrained", options["clip_pretrained"],
                                      "index", "build", "--memory-budget", "10KB"])
    assert result.exit_code == 1 and "cannot hold" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["--index", str(large_archive.folder), "index", "build", "--memory-budget", "lots"])
    assert result.exit_code == 2 and "not a size like 4GB" in result.output


def test_opening_compares_every_id_only_when_the_saved_index_may_differ_from_the_catalog(large_archive, options):
    with Archive.open(large_archive.folder, **options) as archive:
        indexes = archive.indexes()
        assert all(archive.services.indexes.in_sync(kind, index) for kind, index in indexes.items())
        drop = archive.catalog.vector_ids("frame")[:10]
        indexes["frame"].remove(drop)  # an index that lost vectors, marked as if nothing happened
        indexes["frame"].save()
    with Archive.open(large_archive.folder, **options) as archive:
        # the catalog's mark still matches, but the index's size does not: compared, repaired, saved, marked
        assert archive.indexes()["frame"].size == VIDEOS * FRAMES_PER_VIDEO
        assert archive.services.indexes.in_sync("frame", archive.indexes()["frame"])
    with Archive.open(large_archive.folder, **options) as archive:
        assert archive.indexes()["frame"].size == VIDEOS * FRAMES_PER_VIDEO
