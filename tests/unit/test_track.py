"""Track association across sparse samples and the choice of crops, on exact synthetic boxes."""

from __future__ import annotations

import numpy as np

from vidsearch.config import DedupConfig, TrackConfig
from vidsearch.dedup import DuplicateFilter
from vidsearch.records import Box, Frame
from vidsearch.track import Tracker, colour_signature

CONFIG = TrackConfig(max_gap_s=2.5, max_speed=1.0, jitter=0.25, max_colour_distance=0.6, crop_window_s=10.0)


def person(x: float, height: float = 100.0) -> Box:
    return Box(x, 100, x + height / 3, 100 + height)


def dressed(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    crop = np.zeros((90, 30, 3), np.uint8)
    crop[:45], crop[45:] = top, bottom
    return colour_signature(crop)


RED_COAT = dressed((200, 30, 30), (20, 20, 20))
GREEN_COAT = dressed((30, 180, 40), (200, 200, 200))


def test_walkers_keep_their_tracks_across_gaps_without_overlap():
    tracker = Tracker(CONFIG)
    numbers = []
    for second in range(5):
        # two people walking towards each other, 80 px a second: consecutive boxes never overlap
        left, right = person(100 + 80 * second), person(900 - 80 * second)
        tracks, _ = tracker.step(float(second), [(2 * second, left, 0.9, RED_COAT), (2 * second + 1, right, 0.9, RED_COAT)])
        numbers.append(tracks)
    assert numbers == [[0, 1]] * 5


def test_a_long_absence_starts_a_new_track_and_duplicates_hold_only_those_in_view():
    tracker = Tracker(CONFIG)
    assert tracker.step(0.0, [(0, person(100), 0.9, RED_COAT)])[0] == [0]
    tracker.step(1.0, [])  # the person left; the empty room is then held as duplicates
    for t in (2.0, 3.0, 4.0, 5.0):
        tracker.hold(t)
    assert tracker.step(6.0, [(1, person(100), 0.9, RED_COAT)])[0] == [1]
    for t in (7.0, 8.0, 9.0, 10.0):  # standing still: duplicates keep the track alive
        tracker.hold(t)
    assert tracker.step(11.0, [(2, person(110), 0.9, RED_COAT)])[0] == [1]


def test_each_window_of_a_track_hands_out_its_best_crop():
    tracker = Tracker(CONFIG)
    chosen = []
    scores = [0.6, 0.9, 0.7] * 8  # 24 s of one person; best in each 10 s window: keys 1, 10 (or 13...), 22
    for second, score in enumerate(scores):
        chosen += tracker.step(float(second), [(second, person(100 + second), score, RED_COAT)])[1]
    chosen += tracker.finish()
    assert len(chosen) == 3
    assert chosen[0] == 1 and all(scores[key] == 0.9 for key in chosen)
    assert 0 <= chosen[1] - 10 < 10 and chosen[2] >= 20


def test_a_size_jump_is_another_person():
    tracker = Tracker(CONFIG)
    tracker.step(0.0, [(0, person(100, height=100), 0.9, RED_COAT)])
    assert tracker.step(1.0, [(1, person(100, height=250), 0.9, RED_COAT)])[0] == [1]


def test_people_crossing_keep_their_tracks_by_their_colours():
    tracker = Tracker(CONFIG)
    numbers = []
    for second in range(4):
        # at second 2 they pass each other: by position alone, each is nearest to the other's last box
        left, right = person(400 + 20 * second), person(460 - 20 * second)
        tracks, _ = tracker.step(float(second), [(2 * second, left, 0.9, RED_COAT), (2 * second + 1, right, 0.9, GREEN_COAT)])
        numbers.append(tracks)
    assert numbers == [[0, 1]] * 4
    assert colour_signature(np.zeros((1, 1, 3), np.uint8)).sum() == 2.0  # tiny crops still give two histograms


def frame(image: np.ndarray) -> Frame:
    return Frame(index=0, t=0.0, image=image)


def test_noise_is_a_duplicate_but_a_small_figure_is_not():
    config = DedupConfig(enabled=True, grid=(128, 72), pixel_delta=20, max_changed_share=0.001)
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 200, (576, 768, 3), dtype=np.uint8)
    filter_ = DuplicateFilter(config)
    assert not filter_.is_duplicate(frame(scene))
    noisy = np.clip(scene.astype(int) + rng.integers(-8, 9, scene.shape), 0, 255).astype(np.uint8)
    assert filter_.is_duplicate(frame(noisy))
    figure = scene.copy()
    figure[300:380, 400:430] = 255  # a 30 x 80 px person in a 768 x 576 scene: 0.5 % of the picture
    assert not filter_.is_duplicate(frame(figure))
    assert filter_.is_duplicate(frame(figure))  # compared with the last kept frame, which now has it
