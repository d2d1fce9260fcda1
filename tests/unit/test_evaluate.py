"""Metric arithmetic and manifest validation of vidsearch.evaluate, on hand-made manifests and hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared_files import EVAL_DEV
from vidsearch.errors import ManifestError
from vidsearch.evaluate import (
    Manifest,
    Query,
    Relevant,
    TimedBox,
    box_matches,
    evaluate,
    is_relevant,
    load_manifest,
    search_kind,
)
from vidsearch.records import Box, Hit, Item

DEV = EVAL_DEV
ROOT = Path("/data/videos")
A = ROOT / "scenes" / "a.mp4"
B = ROOT / "scenes" / "b.mp4"


def hit(video: Path, t: float, kind: str = "frame", box: Box | None = None) -> Hit:
    return Hit(rank=0, score=0.0, item=Item(vector_id=0, kind=kind, frame_index=0, t=t, box=box), video=video)


def person(video: Path, t: float, box: Box) -> Hit:
    return hit(video, t, "person", box)


def query(qid: str, target: str = "any", boxes=()) -> dict:
    relevant = {"video": "scenes/a.mp4", "intervals": [[10.0, 20.0]]}
    if boxes:
        relevant["boxes"] = [{"t": t, "xyxy": list(xyxy)} for t, xyxy in boxes]
    return {"id": qid, "text": qid, "target": target, "relevant": [relevant]}


def write(tmp_path: Path, queries: list) -> Path:
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"name": "tiny", "version": 1, "tolerance_s": 0.5, "queries": queries}))
    return path


class FakeSearch:
    """Returns canned hits per query text and records what it was asked."""

    def __init__(self, hits: dict[str, list[Hit]]):
        self.hits = hits
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, text: str, kind: str, k: int) -> list[Hit]:
        self.calls.append((text, kind, k))
        return self.hits.get(text, [])


def miss(n: int) -> list[Hit]:
    return [hit(B, 15.0)] * n


@pytest.fixture
def ranked(tmp_path: Path) -> tuple[Manifest, FakeSearch]:
    manifest = load_manifest(write(tmp_path, [query("q1"), query("q2"), query("q3"), query("q4")]))
    search = FakeSearch({
        "q1": [hit(A, 15.0)] + miss(9),
        "q2": miss(2) + [hit(A, 15.0)] + miss(7),
        "q3": miss(6) + [hit(A, 15.0)] + miss(3),
        # Relevant only at rank 11: beyond k, so it must not count even though the search returned it.
        "q4": miss(10) + [hit(A, 15.0)],
    })
    return manifest, search


def test_recall_and_mrr_exact(ranked):
    manifest, search = ranked
    report = evaluate(manifest, search)
    assert report.queries == 4
    assert report.recall_at == {1: 0.25, 5: 0.5, 10: 0.75}
    # the same fractions summed in another order: float64 rounding differs by a few 1e-17 at most
    assert report.mrr == pytest.approx((1 + 1 / 3 + 1 / 7) / 4, abs=1e-15)
    assert report.person_box_match_at_10 is None
    assert search.calls == [(q, "all", 10) for q in ("q1", "q2", "q3", "q4")]


def test_smaller_k_truncates_every_metric(ranked):
    manifest, search = ranked
    report = evaluate(manifest, search, k=5)
    assert report.recall_at == {1: 0.25, 5: 0.5, 10: 0.5}
    assert report.mrr == pytest.approx((1 + 1 / 3) / 4, abs=1e-15)
    assert {k for _, _, k in search.calls} == {5}


def test_to_json_keys(ranked):
    manifest, search = ranked
    out = evaluate(manifest, search).to_json()
    assert out == {
        "name": "tiny",
        "queries": 4,
        "recall@1": 0.25,
        "recall@5": 0.5,
        "recall@10": 0.75,
        "mrr": pytest.approx((1 + 1 / 3 + 1 / 7) / 4, abs=1e-15),
        "person_box_match@10": None,
    }
    json.dumps(out)


@pytest.mark.parametrize(
    ("t", "tolerance", "expected"),
    [
        (9.5, 0.5, True),
        (20.5, 0.5, True),
        (9.49, 0.5, False),
        (20.51, 0.5, False),
        (20.0, 0.0, True),
        (20.01, 0.0, False),
        (0.8, 0.1, True),  # 0.7 + 0.1 is 0.7999999999999999 in floats
    ],
)
def test_tolerance_widens_intervals(t, tolerance, expected):
    q = Query("q", "q", "any", (Relevant("scenes/a.mp4", ((0.5, 0.7), (10.0, 20.0)), ()),))
    assert is_relevant(hit(A, t), q, tolerance) is expected


def test_any_interval_of_the_matching_video_counts():
    q = Query("q", "q", "any", (Relevant("scenes/a.mp4", ((1.0, 2.0), (30.0, 40.0)), ()),))
    assert is_relevant(hit(A, 35.0), q, 0.0)
    assert not is_relevant(hit(A, 20.0), q, 0.0)
    assert not is_relevant(hit(B, 35.0), q, 0.0)


@pytest.mark.parametrize(
    ("video", "expected"),
    [
        ("/x/videos/scenes/a.mp4", True),
        ("/x/videos/more/scenes/a.mp4", True),
        ("/x/videos/scenes/ba.mp4", False),
        ("/x/videos/xscenes/a.mp4", False),
        ("/x/videos/a.mp4", False),
        ("/x/videos/scenes/a.mp4.bak", False),
        ("/a.mp4", False),
    ],
)
def test_video_suffix_matches_whole_components(video, expected):
    q = Query("q", "q", "any", (Relevant("scenes/a.mp4", ((0.0, 100.0),), ()),))
    assert is_relevant(hit(Path(video), 5.0), q, 0.0) is expected


TRUTH = Box(0.0, 0.0, 100.0, 100.0)
LATE = Box(200.0, 200.0, 300.0, 300.0)  # disjoint from TRUTH, so each case can match only one of the two
PERSON_TRUTH = (TimedBox(3.0, TRUTH), TimedBox(1.2, LATE))
PERSON_Q = Query("p", "p", "person", (Relevant("scenes/a.mp4", ((0.0, 60.0),), PERSON_TRUTH),))


@pytest.mark.parametrize(
    ("h", "expected"),
    [
        (person(A, 3.0, TRUTH), True),
        (person(A, 3.0, Box(0.0, 0.0, 100.0, 31.0)), True),  # IoU 0.31
        (person(A, 3.0, Box(0.0, 0.0, 100.0, 29.0)), False),  # IoU 0.29
        (person(A, 4.0, TRUTH), True),  # |dt| = 1 s exactly
        (person(A, 2.0, TRUTH), True),
        (person(A, 4.01, TRUTH), False),
        (person(A, 1.99, TRUTH), False),
        (person(A, 2.2, LATE), True),  # vs t 1.2: 2.2 - 1.2 is 1.0000000000000002 in floats
        (person(B, 3.0, TRUTH), False),  # right box, other video
        (hit(A, 3.0), False),  # no box at all
    ],
)
def test_box_matches(h, expected):
    assert box_matches(h, PERSON_Q) is expected


def test_person_box_match_pools_person_hits_of_person_queries(tmp_path):
    truth = (3.0, (0, 0, 100, 100))
    queries = [query("p1", "person", boxes=[truth]), query("p2", "person", boxes=[truth]), query("any")]
    manifest = load_manifest(write(tmp_path, queries))
    good, bad = person(A, 3.0, TRUTH), person(A, 3.0, Box(0.0, 0.0, 100.0, 29.0))
    search = FakeSearch({
        # Frame hits are not person hits: they count in neither numerator nor denominator.
        "p1": [good, hit(A, 3.0), bad, good],
        "p2": [bad],
        # Person hits of an "any" query are not box-checked.
        "any": [good, bad, bad],
    })
    report = evaluate(manifest, search)
    assert report.person_box_match_at_10 == 2 / 4
    assert [kind for _, kind, _ in search.calls] == ["person", "person", "all"]


def test_person_box_match_counts_only_top_10(tmp_path):
    manifest = load_manifest(write(tmp_path, [query("p", "person", boxes=[(3.0, (0, 0, 100, 100))])]))
    bad = person(A, 3.0, Box(0.0, 0.0, 100.0, 29.0))
    search = FakeSearch({"p": [bad] * 10 + [person(A, 3.0, TRUTH)] * 10})
    assert evaluate(manifest, search, k=20).person_box_match_at_10 == 0.0


def test_person_box_match_is_none_without_person_hits(tmp_path):
    manifest = load_manifest(write(tmp_path, [query("p", "person", boxes=[(3.0, (0, 0, 100, 100))])]))
    assert evaluate(manifest, FakeSearch({"p": [hit(A, 3.0)]})).person_box_match_at_10 is None
    assert evaluate(manifest, FakeSearch({})).person_box_match_at_10 is None


def test_search_kind():
    assert search_kind(Query("q", "q", "person", ())) == "person"
    assert search_kind(Query("q", "q", "any", ())) == "all"


@pytest.mark.parametrize(
    ("name", "count"),
    [("coco_slideshow_captions.json", 400), ("coco_slideshow_categories.json", 63), ("real_videos.json", 6)],
)
def test_dev_sets_load(name, count):
    manifest = load_manifest(DEV / name)
    assert len(manifest.queries) == count
    assert manifest.tolerance_s == 0.5
    assert manifest.path == DEV / name
    assert all(q.relevant and all(r.intervals for r in q.relevant) for q in manifest.queries)


def test_real_videos_person_queries_carry_boxes():
    manifest = load_manifest(DEV / "real_videos.json")
    people = [q for q in manifest.queries if q.target == "person"]
    assert people and all(r.boxes for q in people for r in q.relevant)


def _bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken_set.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"name": "x", "version": 1,', "invalid JSON"),
        ('{"name": "x", "version": 1, "tolerance_s": 0.5}', 'missing key "queries"'),
        ('{"name": "x", "version": 1, "tolerance_s": 0.5, "queries": []}', "no queries"),
        ('{"name": "x", "version": 2, "tolerance_s": 0.5, "queries": []}', "unsupported version"),
        ('{"name": "x", "version": 1, "tolerance_s": "0.5", "queries": []}', "tolerance_s"),
        ('[1, 2]', "expected an object"),
    ],
)
def test_malformed_top_level(tmp_path, text, says):
    path = _bad(tmp_path, text)
    with pytest.raises(ManifestError, match=rf"broken_set\.json.*{says}"):
        load_manifest(path)


REL = r"queries\[0\]\.relevant\[0\]"


@pytest.mark.parametrize(
    ("query_change", "relevant_change", "says"),
    [
        ({"target": "vehicle"}, {}, r"queries\[0\]\.target: unknown target 'vehicle'"),
        ({"id": 7}, {}, r"queries\[0\]\.id: expected a non-empty string, got 7"),
        ({}, {"intervals": [[20.0, 10.0]]}, rf"{REL}\.intervals\[0\]: start 20\.0 is after end 10\.0"),
        ({}, {"intervals": [[1.0]]}, rf"{REL}\.intervals\[0\]: expected an array of 2"),
        ({}, {"intervals": [[0.0, True]]}, rf"{REL}\.intervals\[0\]: expected a finite number"),
        ({}, {"intervals": []}, rf"{REL}\.intervals: no intervals"),
        ({}, {"video": "/abs/a.mp4"}, rf"{REL}\.video: expected a path relative"),
        ({}, {"video": "scenes/../a.mp4"}, rf"{REL}\.video: expected a path relative"),
        ({}, {"video": "."}, rf"{REL}\.video: expected a path relative"),
        ({}, {"boxes": [{"t": 1.0, "xyxy": [5, 5, 1, 1]}]}, rf"{REL}\.boxes\[0\]\.xyxy: empty box"),
    ],
)
def test_malformed_query(tmp_path, query_change, relevant_change, says):
    q = query("q1")
    q.update(query_change)
    q["relevant"][0].update(relevant_change)
    path = _bad(tmp_path, json.dumps({"name": "x", "version": 1, "tolerance_s": 0.5, "queries": [q]}))
    with pytest.raises(ManifestError, match=rf"broken_set\.json: {says}"):
        load_manifest(path)


def test_duplicate_ids_rejected(tmp_path):
    with pytest.raises(ManifestError, match=r"set\.json: queries: duplicate ids \['q1'\]"):
        load_manifest(write(tmp_path, [query("q1"), query("q1")]))


def test_missing_query_key(tmp_path):
    q = query("q1")
    del q["text"]
    with pytest.raises(ManifestError, match=r'set\.json: queries\[0\]: missing key "text"'):
        load_manifest(write(tmp_path, [q]))


def test_unreadable_file(tmp_path):
    with pytest.raises(ManifestError, match=r"missing\.json: cannot read"):
        load_manifest(tmp_path / "missing.json")
