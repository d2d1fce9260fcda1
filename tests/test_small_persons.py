"""Small, distant persons in high-resolution footage: not dropped as duplicates, and found by the detector."""

from __future__ import annotations

import numpy as np
import pytest

from vidsearch.config import default_settings
from vidsearch.dedup import DuplicateFilter
from vidsearch.records import Frame


@pytest.mark.parametrize("width, height", [(1920, 1080), (3840, 2160)])
def test_a_person_entering_a_static_scene_is_new_at_any_resolution(tmp_path, width, height):
    rng = np.random.default_rng(0)
    # a static textured scene of 8 x 8 px blocks, as walls and pavement are, at any resolution
    blocks = rng.integers(40, 200, (height // 8, width // 8, 3), dtype=np.uint8)
    scene = blocks.repeat(8, axis=0).repeat(8, axis=1)
    filter_ = DuplicateFilter(default_settings(tmp_path).dedup)
    assert not filter_.is_duplicate(Frame(index=0, t=0.0, image=scene))
    assert filter_.is_duplicate(Frame(index=1, t=1.0, image=scene.copy()))
    entered = scene.copy()
    entered[height // 2 : height // 2 + 120, width // 3 : width // 3 + 40] = 240  # a 40 x 120 px person
    assert not filter_.is_duplicate(Frame(index=2, t=2.0, image=entered))
