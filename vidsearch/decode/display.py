"""How a video is meant to be shown: turned or mirrored by its display matrix (phone video is stored sideways) and
stretched by its sample aspect ratio (anamorphic video stores wide pictures in narrow pixels).

Frames, and so boxes, crops, thumbnails and exported clips, are all in this displayed picture, as a player shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

# a sample aspect ratio outside this range is a broken header, not a picture anyone meant to show
_PLAUSIBLE_PIXEL_ASPECT = (Fraction(1, 4), Fraction(4))


@dataclass(frozen=True, slots=True)
class Display:
    """From a decoded picture (RGB, as coded) to the picture shown: stretch, then turn, then mirror."""

    quarter_turns: int = 0  # counterclockwise, as numpy.rot90 counts them
    mirrored: bool = False  # left and right swapped after the turn
    pixel_aspect: Fraction = Fraction(1)  # a coded pixel's width over its height

    @classmethod
    def of(cls, stream: Any, frame: Any) -> Display:
        """How a PyAV video stream is shown, from its sample aspect ratio and a decoded frame's display matrix."""
        aspect = stream.sample_aspect_ratio or Fraction(1)
        if not _PLAUSIBLE_PIXEL_ASPECT[0] <= aspect <= _PLAUSIBLE_PIXEL_ASPECT[1]:
            aspect = Fraction(1)
        turns, mirrored = _orientation(frame)
        return cls(turns, mirrored, Fraction(aspect))

    @property
    def is_identity(self) -> bool:
        return self.quarter_turns == 0 and not self.mirrored and self.pixel_aspect == 1

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The shown (width, height) of a coded picture of this size."""
        width, height = self._stretched_size(width, height)
        return (height, width) if self.quarter_turns % 2 else (width, height)

    def show(self, image: np.ndarray) -> np.ndarray:
        """An H x W x 3 RGB picture as decoded, as it is shown."""
        if self.is_identity:
            return image
        if self.pixel_aspect != 1:
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize(self._stretched_size(image.shape[1], image.shape[0]),
                                                             Image.Resampling.BICUBIC))
        image = np.rot90(image, self.quarter_turns)
        return np.ascontiguousarray(image[:, ::-1] if self.mirrored else image)

    def _stretched_size(self, width: int, height: int) -> tuple[int, int]:
        # widen narrow pixels and heighten wide ones: no detail of the coded picture is thrown away
        if self.pixel_aspect > 1:
            return round(width * self.pixel_aspect), height
        if self.pixel_aspect < 1:
            return width, round(height / self.pixel_aspect)
        return width, height


def matrix_rotation(frame: Any) -> int:
    """The display matrix's rotation in degrees counterclockwise, as FFmpeg reads it (decord turns frames by it)."""
    return round(frame.rotation)


def _orientation(frame: Any) -> tuple[int, bool]:
    """(quarter turns, mirrored) for the frame's display matrix, read as the ffmpeg command line reads it.

    FFmpeg's rotation angle alone misreads a mirrored matrix; the signs of the matrix's entries say which way
    it flips (ffmpeg's fftools/ffmpeg_filter.c: transpose, hflip and vflip by the same tests). A matrix
    that turns by other than a right angle is left as coded.
    """
    from av.sidedata.sidedata import Type

    side_data = frame.side_data.get(Type.DISPLAYMATRIX)
    if side_data is None:
        return 0, False
    m = np.frombuffer(bytes(side_data), dtype=np.int32)
    clockwise = -matrix_rotation(frame) % 360
    if clockwise == 90:
        return 3, bool(m[3] > 0)  # mirrored: a transpose
    if clockwise == 270:
        return 1, bool(m[3] < 0)  # mirrored: the transpose across the other diagonal
    if clockwise not in (0, 180):
        return 0, False
    flip_left_right, flip_up_down = clockwise == 180 and m[0] < 0, m[4] < 0
    if flip_left_right and flip_up_down:
        return 2, False
    if flip_up_down:
        return 2, True
    return 0, bool(flip_left_right)
