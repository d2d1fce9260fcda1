"""Small, distant persons in high-resolution footage: not dropped as duplicates, and found by the detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared_files import VIDEOS
from vidsearch import Archive
from vidsearch.config import default_settings, load_settings
from vidsearch.decode import open_video
from vidsearch.dedup import DuplicateFilter
from vidsearch.detect import _tiles
from vidsearch.pipeline import process_videos
from vidsearch.records import Box, Frame


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


@pytest.mark.parametrize("width, height", [(1920, 1080), (3840, 2160)])
def test_small_tiles_cover_the_frame_at_native_size_sharing_the_overlap(tmp_path, width, height):
    config = default_settings(tmp_path).detector
    tiles = _tiles((height, width, 3), config.image_size, config.tile_overlap, fitted=False)
    assert {(t.width, t.height) for t in tiles} == {(config.image_size, config.image_size)}
    xs, ys = sorted({t.x1 for t in tiles}), sorted({t.y1 for t in tiles})
    assert xs[0] == ys[0] == 0 and xs[-1] + config.image_size == width and ys[-1] + config.image_size == height
    steps = [b - a for starts in (xs, ys) for a, b in zip(starts, starts[1:])]
    assert max(steps) <= config.image_size - config.tile_overlap


@pytest.mark.parametrize("width, height", [(1280, 720), (1920, 1080), (3840, 2160)])
def test_large_tiles_cover_the_frame_sharing_the_overlap_with_as_few_pixels_as_tile_size_allows(
    tmp_path, width, height
):
    config = default_settings(tmp_path).detector
    size, overlap = config.tile_size, config.tile_overlap
    tiles = _tiles((height, width, 3), size, overlap, fitted=True)
    [(tile_width, tile_height)] = {(t.width, t.height) for t in tiles}
    xs, ys = sorted({t.x1 for t in tiles}), sorted({t.y1 for t in tiles})
    assert len(tiles) == len(xs) * len(ys)
    assert xs[0] == ys[0] == 0 and xs[-1] + tile_width == width and ys[-1] + tile_height == height
    for starts, side, length in ((xs, tile_width, width), (ys, tile_height, height)):
        assert side <= size and (side == length or side % 32 == 0)
        assert all(b - a <= side - overlap for a, b in zip(starts, starts[1:]))
        count = len(starts)
        # one tile fewer of tile_size could not cover the side; tiles a stride smaller could not keep the overlap
        assert count == 1 or (count - 1) * size - (count - 2) * overlap < length
        assert side == length or count * (side - 32) - (count - 1) * overlap < length


VTEST = "scenes/opencv_vtest_pets2009.avi"
CANVAS_OFFSET = (1500, 900)  # where vtest's 768 x 576 frames lie in the 4K canvas: across tiles' edges


def write_h264(path: Path, images: list[np.ndarray], rate: int) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "18"})
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def persons_per_frame(path: Path, settings, archive, fps: float) -> list[list[Box]]:
    [(_, video)] = list(process_videos([path], settings, archive.embedder(), archive.detector(), fps))
    boxes = [[] for _ in video.frames]
    for person in video.persons:
        if person.detection.label == "person":  # vehicles are tracked too
            boxes[person.frame_position].append(person.detection.box)
    return boxes


def test_far_persons_in_4k_are_found_as_in_the_native_footage(tmp_path, options):
    """vtest pasted unscaled into a static 4K scene: at least 90 % of the persons found in vtest itself, at the
    same boxes. Kept cheap for CPUs: its first 10 s at 1 fps, each sampled frame written as one of a 1 fps clip."""
    with open_video(VIDEOS / VTEST) as decoder:
        images = [frame.image for batch in decoder.frames(1.0, batch_size=16) for frame in batch if frame.t < 10]
    rng = np.random.default_rng(0)
    canvas = rng.integers(90, 170, (2160 // 8, 3840 // 8, 3), dtype=np.uint8).repeat(8, axis=0).repeat(8, axis=1)
    x, y = CANVAS_OFFSET
    pasted = []
    for image in images:
        pasted.append(canvas.copy())
        pasted[-1][y : y + image.shape[0], x : x + image.shape[1]] = image
    native = write_h264(tmp_path / "native.mp4", images, 1)
    big = write_h264(tmp_path / "4k.mp4", pasted, 1)
    settings = load_settings(tmp_path / "archive", **options)
    with Archive.open(tmp_path / "archive", **options) as archive:
        expected = persons_per_frame(native, settings, archive, 1.0)
        found = persons_per_frame(big, settings, archive, 1.0)
    assert len(found) == len(expected) == len(images)
    matched = sum(
        any(Box(b.x1 + x, b.y1 + y, b.x2 + x, b.y2 + y).iou(other) >= 0.5 for other in in_4k)
        for in_native, in_4k in zip(expected, found)
        for b in in_native
    )
    total = sum(map(len, expected))
    assert total >= 40  # vtest has four or more people in view throughout
    assert matched >= 0.9 * total, f"{matched} of {total} persons found at their boxes in 4K"
