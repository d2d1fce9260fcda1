"""Which tiles a video's frames are seen in (vidsearch.detect.SceneTiles): small ones where little moves, large ones
once most of the small ones change from frame to frame."""

from __future__ import annotations

import numpy as np
import pytest

from vidsearch.config import default_settings
from vidsearch.detect import SceneTiles, _tiles
from vidsearch.records import Frame


def shown(scene: SceneTiles, config, image: np.ndarray, index: int) -> list:
    """The tiles a frame is seen in, as Detector.detect goes through them."""
    frame = Frame(index=index, t=float(index), image=image)
    tiles = scene.tiles(image.shape, config)
    changed = [tile for tile in tiles if scene.changed(frame, tile)]
    scene.ran(image.shape, config, sum(tile.width * tile.height for tile in changed))
    return tiles


@pytest.fixture
def settings(tmp_path):
    return default_settings(tmp_path)


def textured(rng, height: int, width: int) -> np.ndarray:
    return rng.integers(40, 200, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, axis=0).repeat(8, axis=1)


def test_a_static_4k_scene_where_one_person_walks_stays_in_small_tiles(settings):
    rng = np.random.default_rng(0)
    config, scene = settings.detector, SceneTiles(settings.dedup)
    background = textured(rng, 2160, 3840)
    small = _tiles(background.shape, config.image_size, config.tile_overlap, fitted=False)
    for index in range(8):
        image = background.copy()
        image[900:1020, 1500 + 60 * index : 1540 + 60 * index] = 240  # a 40 x 120 px person walking right
        assert shown(scene, config, image, index) == small
    assert not scene.large


def test_a_scene_that_changes_everywhere_goes_on_in_large_tiles_after_three_frames(settings):
    rng = np.random.default_rng(0)
    config, scene = settings.detector, SceneTiles(settings.dedup)
    shape = (720, 1280, 3)
    small = _tiles(shape, config.image_size, config.tile_overlap, fitted=False)
    large = _tiles(shape, config.tile_size, config.tile_overlap, fitted=True)
    seen = [shown(scene, config, textured(rng, 720, 1280), index) for index in range(5)]
    assert seen == [small, small, small, large, large]
    assert sum(t.width * t.height for t in large) < sum(t.width * t.height for t in small) / 2


def test_without_a_duplicate_test_every_frame_is_in_large_tiles(settings):
    config, scene = settings.detector, SceneTiles(None)
    shape = (1080, 1920, 3)
    assert scene.tiles(shape, config) == _tiles(shape, config.tile_size, config.tile_overlap, fitted=True)
