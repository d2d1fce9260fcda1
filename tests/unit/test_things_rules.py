"""The pure rules of tracked things: direction of travel from boxes, families and what --kind names, the vehicle
vocabulary and its groups measured from the track, one tracker per family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidsearch.attributes import load_vocabulary
from vidsearch.config import default_settings
from vidsearch.errors import ConfigError
from vidsearch.records import Box, Frame
from vidsearch.things import every_family, families, kind_choice, tracked_option
from vidsearch.track import travel_direction

SETTINGS = default_settings(Path("/nowhere"))
TIMES = [0.0, 1.0, 2.0, 3.0, 4.0]


def car(x: float, height: float, bottom: float = 300.0) -> Box:
    return Box(x - height, bottom - height, x + height, bottom)


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        # growing 1.5x while drifting right, away from the vanishing point: it comes towards the camera
        ([car(300 + 20 * i, 40 * 1.5 ** (i / 4)) for i in range(5)], "towards"),
        ([car(300 - 20 * i, 60 / 1.5 ** (i / 4)) for i in range(5)], "away"),
        # crossing the view at the same size: two box widths in four seconds
        ([car(100 + 40 * i, 40) for i in range(5)], "right"),
        ([car(500 - 40 * i, 40) for i in range(5)], "left"),
        # parked, with the detector's jitter of a few pixels
        ([car(300 + (-3) ** i % 5, 40 + i % 2) for i in range(5)], "still"),
    ],
)
def test_direction_of_travel_is_read_from_the_boxes(boxes, expected):
    assert travel_direction(TIMES, boxes) == expected


def test_a_track_seen_once_has_no_direction():
    assert travel_direction([2.0], [car(100, 40)]) is None
    assert travel_direction([2.0, 2.0], [car(100, 40), car(300, 80)]) is None


def test_families_group_the_tracked_classes_with_their_own_speeds():
    found = families(SETTINGS)
    assert found["vehicle"].classes == ("car", "truck", "bus", "motorcycle", "bicycle")
    assert found["vehicle"].track.max_speed > found["person"].track.max_speed
    only = families(SETTINGS, ("person", "bus", "dog"))
    assert {name: f.classes for name, f in only.items()} == {
        "person": ("person",), "vehicle": ("bus",), "dog": ("dog",)
    }
    assert only["dog"].attributes is None and only["dog"].track == SETTINGS.track
    assert set(every_family(SETTINGS)) == {"person", "vehicle"}


def test_kind_names_all_frames_a_family_or_a_class():
    assert kind_choice("all", SETTINGS).labels is None
    assert kind_choice("frame", SETTINGS).kinds == ("frame",)
    assert kind_choice("vehicle", SETTINGS).labels == {"car", "truck", "bus", "motorcycle", "bicycle"}
    assert kind_choice("car", SETTINGS).labels == {"car"}
    assert kind_choice("person", SETTINGS).labels == {"person"}
    with pytest.raises(ConfigError, match="expected one of all, frame, person, vehicle, bicycle"):
        kind_choice("boat", SETTINGS)
    assert tracked_option(" person, car,,car ") == ("person", "car")
    with pytest.raises(ConfigError):
        tracked_option(" , ")


def test_the_vehicle_vocabulary_names_colours_bodies_and_directions():
    vocabulary = load_vocabulary(None, "vehicles.yaml")
    mentions = {(m.group, m.label) for m in vocabulary.mentions("a white van heading left")}
    assert mentions == {("vehicle_color", "white"), ("body", "van"), ("direction", "left")}
    assert {(m.group, m.label) for m in vocabulary.mentions("red pickup truck coming towards us")} == {
        ("vehicle_color", "red"), ("body", "pickup"), ("direction", "towards"),
    }
    [direction] = [g for g in vocabulary.groups if g.name == "direction"]
    assert direction.from_track and all(not label.prompts for label in direction.labels)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ("colour:\n    from: track\n    labels: [a, b]", "only direction can be from: track"),
        ("direction:\n    from: track\n    labels: {left: {prompts: [x]}, right: {}}", "has no phrasings"),
    ],
)
def test_only_the_direction_is_measured_from_the_track(tmp_path, group, message):
    path = tmp_path / "v.yaml"
    path.write_text(f"version: 1\ngroups:\n  {group}\n")
    with pytest.raises(ConfigError, match=message):
        load_vocabulary(path)


def test_a_person_and_a_car_in_the_same_place_are_never_one_track():
    from vidsearch.pipeline import _VideoWork
    from vidsearch.records import Detection

    work = _VideoWork(SETTINGS, dim=4)
    image = np.full((360, 640, 3), 128, np.uint8)
    box = Box(100, 100, 160, 220)
    for second, label in enumerate(["person", "car", "person"]):
        work.track([Frame(second, float(second), image)], [[Detection(box, 0.9, label)]])
    tracks = [(detection.label, track) for _, detection, track in work.detections]
    assert tracks[0][1] == tracks[2][1] != tracks[1][1], tracks
