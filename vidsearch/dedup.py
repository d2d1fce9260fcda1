"""Tell a sampled frame that shows nothing new from the last frame kept, before any model sees it."""

from __future__ import annotations

import math

import numpy as np

from .config import DedupConfig
from .records import Frame


class DuplicateFilter:
    """Compares a coarse grey grid of each frame with the last kept one; one filter per video.

    It counts grid points that changed by more than `pixel_delta` rather than averaging the change, so a
    small figure crossing a large static scene still counts as new while compression noise does not.
    The grid's points are at most `max_spacing` pixels apart and the count needed is the same at any size,
    so a 40 x 120 px person is as new in 4K as in 1080p, where a fixed grid would see it with a quarter of
    the points. Comparing with the last kept frame, not the previous one, stops slow drift from hiding.
    """

    def __init__(self, config: DedupConfig):
        self.config = config
        self._kept: np.ndarray | None = None
        columns, rows = config.grid
        self._min_changed = config.max_changed_share * columns * rows

    def is_duplicate(self, frame: Frame) -> bool:
        signature = self._signature(frame.image)
        if self._kept is not None and signature.shape == self._kept.shape:
            changed = np.count_nonzero(np.abs(signature - self._kept) > self.config.pixel_delta)
            if changed < self._min_changed:
                return True
        self._kept = signature
        return False

    def _signature(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        least_columns, least_rows = self.config.grid
        spacing = self.config.max_spacing
        columns = max(least_columns, math.ceil((width - 1) / spacing) + 1)
        rows = max(least_rows, math.ceil((height - 1) / spacing) + 1)
        ys = np.linspace(0, height - 1, rows).astype(np.intp)
        xs = np.linspace(0, width - 1, columns).astype(np.intp)
        return image[np.ix_(ys, xs)].astype(np.int16).sum(axis=2) // 3
