"""Tracked things beyond persons: vehicles tracked into appearances, their direction of travel, `--kind` by class or
family, retracking an archive made before vehicles were tracked, and the migration of older catalogs.

Real footage (car_traffic_bridge: a two-lane causeway filmed from the lane coming towards the camera, the far lane
going away, right of its yellow centre line), the real YOLO11n, real SQLite, Parquet and FAISS; the tiny
random-weight CLIP only for the mechanics of embeddings and evidence (it carries no text-image meaning, so nothing
here claims a white van is found).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from shared_files import catalog_at_revision, footage_folder, global_options, time_iou
from vidsearch import Archive
from vidsearch.cli import cli
from vidsearch.store.tracks import TrackCatalog

BRIDGE = "scenes/car_traffic_bridge.mp4"
VEHICLES = {"car", "truck", "bus", "motorcycle", "bicycle"}
# The bridge's vehicles, hand-labeled from its frames every 0.5 s (0.25 s where one enters or leaves): (kind, lane,
# start, end, how well its ends are known, s). In view = at least half of it in the picture and 32 px tall (the
# crops' default min_height); ends at the picture's edge, behind another vehicle or the clip's are known to 0.5 s,
# ends where it grows or shrinks past 32 px to 1 s.
BRIDGE_VEHICLES = [
    ("car", "towards", 0.0, 6.0, 0.5), ("car", "towards", 0.0, 13.0, 0.5), ("car", "towards", 4.0, 21.0, 1),
    ("pickup", "towards", 0.0, 10.0, 0.5), ("minivan", "towards", 12.0, 29.0, 1), ("car", "towards", 19.0, 30.5, 1),
    ("motorcycle", "away", 3.75, 14.0, 1), ("suv", "away", 7.75, 19.5, 1), ("car", "away", 10.25, 21.0, 1),
    ("pickup", "away", 19.75, 30.5, 0.5), ("pickup", "away", 20.5, 30.5, 0.5),
]
# also in view, but under 5 s, mostly behind another vehicle (or, the bicycle, its walker) or under 32 px: none has
# to be found, and each may make an appearance
BRIDGE_GLIMPSED = [(0.0, 2.5), (0.0, 3.5), (0.0, 15.75), (0.0, 19.25), (0.0, 18.0), (14.5, 17.0), (0.0, 30.5),
                   (17.5, 30.5), (21.5, 30.5), (24.0, 30.5)]


def untracked_vehicles(archive: Archive, video_id: int) -> dict:
    """A video's vehicles still kept as objects per frame (not tracked), by frame id."""
    return TrackCatalog(archive.catalog.engine).objects_of_video(video_id, sorted(VEHICLES))


def vehicle_appearances(archive: Archive, path):
    video = archive.catalog.video(path)
    return [a for a in archive.catalog.appearances_of_video(video.id) if a.label in VEHICLES]


def lane(box) -> str:
    """The bridge's lanes, split by the yellow centre line measured on its frames (through (353, 147) and
    (633, 280) in its 640 x 360 picture): a vehicle whose wheels are right of it drives away from the camera."""
    centre, bottom = (box.x1 + box.x2) / 2, box.y2
    return "away" if bottom < 147 + 0.475 * (centre - 353) else "towards"


def direction(appearance) -> str | None:
    measured = appearance.attributes.get("direction")
    return max(measured, key=measured.get) if measured else None


@pytest.fixture(scope="module")
def bridge(tmp_path_factory, options):
    """The bridge clip ingested once at 1 fps with the default tracked classes (persons and vehicles)."""
    root = footage_folder(tmp_path_factory.mktemp("traffic"), BRIDGE)
    archive = Archive.open(tmp_path_factory.mktemp("things"), **options)
    archive.ingest([root])
    yield archive, root
    archive.close()


@pytest.fixture(scope="module")
def retracked(tmp_path_factory, options, bridge):
    """The same clip at 2 fps, ingested tracking persons only (as archives were before), then retracked."""
    _, root = bridge
    archive = Archive.open(tmp_path_factory.mktemp("retracked"), **options)
    archive.ingest([root], fps=2, track=["person"])
    video = archive.catalog.video(root / BRIDGE)
    before = {
        "frames": archive.catalog.vector_ids_of_video(video.id)["frame"].tolist(),
        "vehicle_objects": sum(len(found) for found in untracked_vehicles(archive, video.id).values()),
        "appearances": [(a.id, a.label, a.start, a.end) for a in archive.catalog.appearances_of_video(video.id)],
    }
    report = archive.retrack()
    yield archive, root, before, report
    archive.close()


@pytest.fixture(scope="module")
def paired(bridge) -> list:
    """The appearance paired with each of BRIDGE_VEHICLES (None where none is left): among the tracks with most of
    their boxes in the vehicle's lane (one split evenly is in neither), the best time IoU first, each paired once."""
    archive, root = bridge
    boxes_of_track = {}
    for item, track, _ in archive.catalog.persons_of_video(archive.catalog.video(root / BRIDGE).id):
        boxes_of_track.setdefault(track, []).append(item.box)
    appearances = vehicle_appearances(archive, root / BRIDGE)
    lanes = [[lane(box) for box in boxes_of_track[a.track]] for a in appearances]
    pairs = sorted(((time_iou(truth[2:4], (a.start, a.end)), i, j) for i, truth in enumerate(BRIDGE_VEHICLES)
                    for j, a in enumerate(appearances) if 2 * lanes[j].count(truth[1]) > len(lanes[j])),
                   reverse=True)
    paired = {}
    for _, i, j in pairs:
        if i not in paired and j not in paired.values():
            paired[i] = j
    return [appearances[paired[i]] if i in paired else None for i in range(len(BRIDGE_VEHICLES))]


def test_vehicles_are_tracked_into_appearances_read_against_the_vehicle_vocabulary(bridge):
    archive, root = bridge
    video = archive.catalog.video(root / BRIDGE)
    vehicles = vehicle_appearances(archive, root / BRIDGE)
    spans = [(a.start, a.end) for a in vehicles]
    # one appearance per vehicle: a tracker that splits or invents tracks makes more than there are vehicles
    assert len(vehicles) <= len(BRIDGE_VEHICLES) + len(BRIDGE_GLIMPSED), spans
    # tracked classes are crops with vectors now, no longer objects per frame
    assert untracked_vehicles(archive, video.id) == {}
    labels_of_track = {}
    for item, track, _ in archive.catalog.persons_of_video(video.id):
        labels_of_track.setdefault(track, set()).add(item.label)
    for appearance in vehicles:
        assert labels_of_track[appearance.track] <= VEHICLES  # one family per track: no person joins a car's
        colours = appearance.attributes["vehicle_color"]
        assert sum(colours.values()) == pytest.approx(1.0, abs=1e-4)
        assert "body" in appearance.attributes and "upper_color" not in appearance.attributes
        if appearance.end > appearance.start:
            assert sorted(appearance.attributes["direction"].values()) == [0.0, 0.0, 0.0, 0.0, 1.0]


# What the tracker gets wrong on this clip today, each a defect, kept as strict expected failures so that the others
# guard against regressions and a fix shows up as an unexpected pass
SWITCHED = ("at 1 fps the pickup's track goes on with the silver SUV crossing it in the other lane, "
            "so neither is one appearance")
KNOWN_MISSES = {
    3: SWITCHED, 7: SWITCHED,
    6: "the motorcycle is detected in a few samples only and tracked for 3 of its 10 s",
    9: "the grey pickup is split in two tracks (20-23 s and 26-29 s)",
}


@pytest.mark.parametrize("vehicle", [
    pytest.param(i, id=f"{kind}-{lane}-{start:g}s",
                 marks=[pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[i])] if i in KNOWN_MISSES else [])
    for i, (kind, lane, start, *_) in enumerate(BRIDGE_VEHICLES)
])
def test_each_labeled_vehicle_is_one_appearance_going_the_way_of_its_lane(vehicle, paired):
    _, lane_of_truth, start, end, known = BRIDGE_VEHICLES[vehicle]
    found = paired[vehicle]
    # sampled each second, a track's ends miss the true ones by up to 1 s plus the labels' error at each end:
    # a vehicle in view for L s keeps a time IoU of (L - 2 (1 + known)) / L, 0.5 for the shortest (6 s)
    bound = (end - start - 2 * (1 + known)) / (end - start)
    assert found and time_iou((start, end), (found.start, found.end)) >= bound, found
    # each labeled vehicle grows or shrinks in the picture by 1.5 times or more while in view, past the 1.25 that
    # reads as travel in depth
    assert direction(found) == lane_of_truth, (found.start, found.end, found.attributes["direction"])


def test_retrack_adds_vehicle_tracks_without_detecting_or_embedding_frames_again(retracked):
    archive, root, before, report = retracked
    video = archive.catalog.video(root / BRIDGE)
    assert before["vehicle_objects"] > 0
    assert report.videos == 1 and report.appearances >= 5 and not report.failed
    assert archive.catalog.vector_ids_of_video(video.id)["frame"].tolist() == before["frames"]
    kept = [(a.id, a.label, a.start, a.end) for a in archive.catalog.appearances_of_video(video.id)
            if a.id in {old[0] for old in before["appearances"]}]
    assert kept == before["appearances"]  # the persons' appearances stay as they were
    assert untracked_vehicles(archive, video.id) == {}
    # the new crops' vectors are in the shard and the index, so a rebuilt index equals the running one
    assert archive.index_report("person").info.vectors == len(archive.catalog.vector_ids("person"))
    stored = archive.services.shards.read([video.id])
    assert sorted(stored.ids[stored.kinds == "person"].tolist()) == archive.catalog.vector_ids("person").tolist()
    assert archive.retrack().unchanged == 1  # nothing left to track: nothing is decoded


def test_vehicle_appearances_are_stable_when_the_sampling_rate_doubles(bridge, retracked):
    # the bound of the persons' test (tests/integration/test_people.py): a track of L >= 5 s seen at 1 and 2 fps
    # keeps a time IoU of at least 0.6; vehicles cross each other in their lanes, so half of them must be found whole
    spans = {
        1: [(a.start, a.end) for a in vehicle_appearances(bridge[0], bridge[1] / BRIDGE)],
        2: [(a.start, a.end) for a in vehicle_appearances(retracked[0], retracked[1] / BRIDGE)],
    }
    assert abs(len(spans[2]) - len(spans[1])) <= 0.25 * len(spans[1]), spans
    lasting = [span for span in spans[1] if span[1] - span[0] >= 5]
    found_again = [max(time_iou(span, other) for other in spans[2]) for span in lasting]
    assert lasting and np.mean(np.array(found_again) >= 0.6) >= 0.5, found_again


@pytest.mark.parametrize("which", ["ingested", "retracked"])
def test_each_vehicles_own_crop_finds_its_own_appearance(which, bridge, retracked):
    archive, root = (bridge if which == "ingested" else retracked[:2])
    video = archive.catalog.video(root / BRIDGE)
    stored = archive.services.shards.read([video.id])
    vehicles = vehicle_appearances(archive, root / BRIDGE)
    vectors = np.stack([stored.vectors[stored.ids == a.best_person_id][0] for a in vehicles])
    found = [hits[0].appearance for hits in archive.search_vectors(vectors, k=1, kind="vehicle")]
    assert found == [a.id for a in vehicles]


def test_kind_names_a_family_or_a_class_and_hits_carry_their_label(bridge, options, tmp_path):
    archive, root = bridge
    text = "a white van driving towards the camera"
    vehicles = archive.query(text, k=50, kind="vehicle")
    assert vehicles and {hit.item.label for hit in vehicles} <= VEHICLES
    for hit in vehicles:
        assert hit.to_json()["label"] == hit.item.label and hit.to_json()["kind"] == "person"
        # the query names a colour, a body type and a direction: each vehicle answers all three from its appearance
        groups = {m.group for m in hit.evidence}
        assert groups == ({"vehicle_color", "body", "direction"} if hit.span[1] > hit.span[0]
                          else {"vehicle_color", "body"}), hit
    cars = archive.query(text, k=50, kind="car")
    assert cars and {hit.item.label for hit in cars} == {"car"}
    assert all(hit.item.label == "person" for hit in archive.query(text, k=50, kind="person"))
    runner = CliRunner()
    result = runner.invoke(cli, [*global_options(archive.settings.archive, options), "query", text, "--kind", "boat"])
    assert result.exit_code == 2 and "vehicle" in result.output and "car" in result.output


def test_an_archive_of_revision_0005_upgrades_and_keeps_its_appearances(tmp_path):
    from vidsearch.archive import upgrade_archive
    from vidsearch.store import Catalog, head_revision

    path = catalog_at_revision(
        tmp_path, "0005",
        "INSERT INTO videos (id, path, size, mtime_ns, status, indexed_at, camera) "
        "VALUES (1, '/v.mp4', 1, 1, 'indexed', 0, 'cam')",
        "INSERT INTO frames VALUES (1, 1, 0, 0.0), (2, 1, 10, 1.0)",
        "INSERT INTO persons VALUES (3, 1, 'person', 0.9, 0, 0, 10, 20, 0, 1), (4, 2, 'person', 0.8, 1, 1, 11, 21, 0, 1)",
        "INSERT INTO appearances (id, video_id, track, start, end, detections, best_person_id, attributes) "
        "VALUES (7, 1, 0, 0.0, 1.0, 2, 3, '{\"glasses\": {\"glasses\": 0.8, \"none\": 0.2}}')",
        "INSERT INTO objects (frame_id, label, score, x1, y1, x2, y2) VALUES (2, 'car', 0.7, 0, 0, 50, 40)",
    )
    assert upgrade_archive(tmp_path) == ("0005", head_revision())
    catalog = Catalog(path)
    catalog.ensure_schema()
    [appearance] = catalog.appearances_of_video(1)
    assert (appearance.id, appearance.label, appearance.start, appearance.end, appearance.best_person_id) == (
        7, "person", 0.0, 1.0, 3
    )
    assert appearance.attributes == {"glasses": {"glasses": 0.8, "none": 0.2}}
    assert catalog.counts()["persons"] == 2
    # cars kept as objects by the older version are what `retrack` tracks
    assert [d.label for d in TrackCatalog(catalog.engine).objects_of_video(1, ["car"])[2]] == ["car"]


def test_retrack_and_stats_on_the_command_line(bridge, options):
    archive, root = bridge
    base = global_options(archive.settings.archive, options)
    runner = CliRunner()
    retracked = runner.invoke(cli, [*base, "retrack", "--track", "car,truck", "--json"])
    # vehicles were tracked at ingest: no untracked car is left to track, so nothing is decoded
    assert retracked.exit_code == 0, retracked.output
    assert json.loads(retracked.output) | {"wall_seconds": 0} == {
        "videos": 0, "appearances": 0, "crops": 0, "unchanged": 1, "failed": [], "wall_seconds": 0,
    }
    stats = json.loads(runner.invoke(cli, [*base, "stats", "--json"]).output)
    labels = [a.label for a in archive.catalog.appearances_of_video(archive.catalog.video(root / BRIDGE).id)]
    assert stats["tracked"] == {label: labels.count(label) for label in sorted(set(labels))}
    assert stats["tracked"]["car"] >= 5
