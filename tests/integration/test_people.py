"""Appearances, attributes with evidence, and scores, on an ingested archive.

Real footage and the real YOLO11n for appearances; the tiny random-weight CLIP for the mechanics of
attributes and scores (it carries no text-image meaning, so nothing here claims a red jacket is found).
The pure parts (the vocabulary file, moments, grouping by appearance, the query parser) are in
tests/unit/test_queries_and_moments.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shared_files import footage_folder, time_iou
from vidsearch import Archive
from vidsearch.attributes import load_vocabulary
from vidsearch.cli import cli
from vidsearch.errors import ConfigError, NotFoundError

ONE_BY_ONE = "scenes/intel_one-by-one-person-detection.mp4"
# when someone is in view (the video's README; accurate to about half a second)
ONE_BY_ONE_SPANS = [(6.5, 20.0), (23.0, 45.0), (50.5, 70.0), (74.5, 87.0), (92.5, 120.5), (123.5, 136.0)]


def appearance_spans(archive: Archive, path: Path) -> list[tuple[float, float]]:
    video = archive.catalog.video(path)
    return [(a.start, a.end) for a in archive.catalog.appearances_of_video(video.id)]


def test_appearances_are_the_people_who_come_in_turn(ingested):
    archive, root, _ = ingested
    spans = appearance_spans(archive, root / ONE_BY_ONE)
    for truth in ONE_BY_ONE_SPANS:
        # spans of 12.5 s or more known to 0.5 s, sampled each second: 1.5 s off at each end keeps 9.5 / 12.5 = 0.76
        assert max(time_iou(truth, span) for span in spans) >= 0.7, (truth, spans)
    spurious = [span for span in spans if max(time_iou(truth, span) for truth in ONE_BY_ONE_SPANS) < 0.7]
    assert len(spurious) <= 1, spans


# vtest: a crowd crossing a lawn, ~10 people in view, which the tracker was tuned on; rknn_people-walking: a shopping
# street with people walking towards and away from the camera, held out: the tracker was never tuned on it
@pytest.mark.parametrize("clip", ["scenes/opencv_vtest_pets2009.avi", "scenes/rknn_people-walking.mp4"])
def test_appearances_are_stable_when_the_sampling_rate_doubles(clip, tmp_path, options):
    root = footage_folder(tmp_path / "footage", clip)
    spans = {}
    for fps in (1, 2):
        with Archive.open(tmp_path / f"archive-{fps}", **options) as archive:
            archive.ingest([root], fps=fps)
            spans[fps] = appearance_spans(archive, root / clip)
    # The bounds follow from the sampling, not from measured output. The same person's track seen at both rates
    # differs by at most one 1 fps step (1 s) at each end, so a track of L >= 5 s keeps a time IoU of at least
    # (L - 2) / L >= 0.6. Tracks cut where people pass behind each other may be cut at other frames at the other
    # rate: at least half of the lasting tracks must be found whole, and the count may move by a quarter.
    assert abs(len(spans[2]) - len(spans[1])) <= 0.25 * len(spans[1]), spans
    lasting = [span for span in spans[1] if span[1] - span[0] >= 5]
    found_again = [max(time_iou(span, other) for other in spans[2]) for span in lasting]
    assert lasting and np.mean(np.array(found_again) >= 0.6) >= 0.5, found_again


def test_person_hits_are_appearances_with_their_span_and_the_attributes_the_query_names(ingested):
    archive, _, _ = ingested
    hits = archive.query("man in red jacket with glasses", k=10, kind="person")
    phrase = {h.item.vector_id: h.score for h in archive.query(
        "man in red jacket with glasses", k=10_000, kind="person", group=False
    )}
    assert hits and len({hit.appearance for hit in hits}) == len(hits)
    for hit in hits:
        assert hit.span[0] <= hit.item.t <= hit.span[1]
        assert {(m.group, m.label) for m in hit.evidence} == {
            ("upper_color", "red"), ("upper_garment", "jacket"), ("glasses", "glasses")
        }
        record = hit.to_json()
        assert record["start"] <= record["t"] <= record["end"]
        assert [a["label"] for a in record["attributes"]] == ["red", "jacket", "glasses"]
        # the score is the phrase's similarity plus 0.1 x the named labels' mean probability
        bonus = 0.1 * np.mean([m.probability for m in hit.evidence])
        assert hit.score == pytest.approx(phrase[hit.item.vector_id] + bonus, abs=1e-6)


def test_attribute_probabilities_are_shared_within_each_group(ingested):
    archive, root, _ = ingested
    video = archive.catalog.video(root / ONE_BY_ONE)
    appearances = archive.catalog.appearances_of_video(video.id)
    groups = {group.name for group in load_vocabulary().groups}  # the persons' vocabulary
    for appearance in appearances:
        assert set(appearance.attributes) == groups
        for labels in appearance.attributes.values():
            assert sum(labels.values()) == pytest.approx(1.0, abs=1e-5)
    described = archive.describe(appearances[0].best_person_id).to_json()
    assert described["appearance"]["start"] == pytest.approx(appearances[0].start, abs=1e-3)
    assert set(described["appearance"]["attributes"]) == groups


def test_describe_prints_a_persons_attributes(ingested, options):
    archive, root, _ = ingested
    video = archive.catalog.video(root / ONE_BY_ONE)
    best = archive.catalog.appearances_of_video(video.id)[0].best_person_id
    base = ["--index", str(archive.folder), "--clip-model", options["clip_model"],
            "--clip-pretrained", options["clip_pretrained"], "--device", "cpu"]
    result = CliRunner().invoke(cli, [*base, "describe", str(best)])
    assert result.exit_code == 0, result.output
    assert f"person {best}" in result.output and "upper_color" in result.output and "glasses" in result.output
    assert json.loads(CliRunner().invoke(cli, [*base, "describe", str(best), "--json"]).output)["id"] == best
    result = CliRunner().invoke(cli, [*base, "describe", "999999999"])
    assert result.exit_code == 1 and "no hit with id 999999999" in result.output


def test_excluded_phrases_subtract_half_their_similarity(ingested):
    archive, _, _ = ingested
    plain = {h.item.vector_id: h.score for h in archive.query("people on a street", k=10_000, kind="frame", group=False)}
    excluded = archive.query("people on a street -bicycle", k=10_000, kind="frame", group=False)
    same = archive.query("people on a street", k=10_000, kind="frame", group=False, exclude=["bicycle"])
    assert [h.score for h in excluded] == pytest.approx([h.score for h in same])
    bicycle = {h.item.vector_id: h.score for h in archive.query("bicycle", k=10_000, kind="frame", group=False)}
    for h in excluded:
        assert h.score == pytest.approx(plain[h.item.vector_id] - 0.5 * bicycle[h.item.vector_id], abs=1e-5)
    with pytest.raises(ConfigError, match="empty"):
        archive.query("-bicycle")


def test_min_score_cuts_the_tail(ingested, options):
    archive, _, _ = ingested
    base = ["--index", str(archive.folder), "--clip-model", options["clip_model"],
            "--clip-pretrained", options["clip_pretrained"], "--device", "cpu"]
    query = [*base, "query", "a bicycle", "-k", "10000", "--no-group", "--json"]
    everything = json.loads(CliRunner().invoke(cli, query).output)["hits"]
    scores = sorted(hit["score"] for hit in everything)
    # inside the reachable range, about half the hits stay; halfway between two scores, since the printed scores
    # are rounded and one rounded up would sit above its own hit's score
    middle = len(scores) // 2
    threshold = (scores[middle - 1] + scores[middle]) / 2
    kept = json.loads(CliRunner().invoke(cli, [*query, "--min-score", str(threshold)]).output)["hits"]
    assert 0 < len(kept) < len(everything)
    assert [hit["id"] for hit in kept] == [hit["id"] for hit in everything if hit["score"] >= threshold]
    above_all = scores[-1] + 0.01
    result = CliRunner().invoke(cli, [*base, "query", "a bicycle", "--min-score", str(above_all)])
    assert f"no good match: no hits scoring {above_all} or more" in result.output


def test_more_like_a_person_whose_crop_was_not_embedded_uses_their_appearance(ingested):
    archive, root, _ = ingested
    video = archive.catalog.video(root / ONE_BY_ONE)
    unembedded = next(item for item, _, embedded in archive.catalog.persons_of_video(video.id) if not embedded)
    appearance = archive.catalog.appearances_of([unembedded.vector_id])[unembedded.vector_id]
    hits = archive.query_like(unembedded.vector_id, k=5, kind="person")
    assert hits and all(hit.appearance != appearance.id for hit in hits)
    with pytest.raises(NotFoundError, match="no hit with id"):
        archive.query_like(2**70)
