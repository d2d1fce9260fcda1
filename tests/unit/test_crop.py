"""Person crops cut from a frame: a margin around the box, inside the frame, and no crop of a box too small."""

from __future__ import annotations

import numpy as np

from vidsearch.config import default_settings
from vidsearch.detect import crop
from vidsearch.records import Box, Detection, Frame


def test_crop_adds_a_margin_inside_the_frame_and_skips_tiny_boxes():
    config = default_settings(__import__("pathlib").Path(".")).crop
    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    frame = Frame(index=0, t=0.0, image=image)
    cut = crop(frame, Detection(Box(50, 20, 70, 80), 0.9, "person"), config)
    assert cut.image.shape == (72, 24, 3)  # 10 % of 60 px and 20 px on each side
    assert np.array_equal(cut.image, image[14:86, 48:72])
    edge = crop(frame, Detection(Box(190, 0, 200, 100), 0.9, "person"), config)
    assert edge is None  # 10 px wide: below the minimum width
    border = crop(frame, Detection(Box(180, 0, 200, 100), 0.9, "person"), config)
    assert border.image.shape == (100, 22, 3)  # clipped to the frame
