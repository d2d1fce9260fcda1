"""Tell a sampled frame that shows nothing new from the last frame kept, before any model sees it."""

from __future__ import annotations

import numpy as np

from .config import DedupConfig
from .records import Frame


class DuplicateFilter:
    """Compares a coarse grey grid of each frame with the last kept one; one filter per video.

    It counts grid points that changed by more than `pixel_delta` rather than averaging the change, so a
    small figure crossing a large static scene still counts as new while compression noise does not.
    Comparing with the last kept frame, not the previous one, stops slow drift from hiding.
    """

    def __init__(self, config: DedupConfig):
        self.config = config
        self._kept: np.ndarray | None = None

    def is_duplicate(self, frame: Frame) -> bool:
        signature = self._signature(frame.image)
        if self._kept is not None and signature.shape == self._kept.shape:
            changed = np.count_nonzero(np.abs(signature - self._kept) > self.config.pixel_delta)
            if changed < self.config.max_changed_share * signature.size:
                return True
        self._kept = signature
        return False

    def _signature(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        columns, rows = self.config.grid
        ys = np.linspace(0, height - 1, rows).astype(np.intp)
        xs = np.linspace(0, width - 1, columns).astype(np.intp)
        return image[np.ix_(ys, xs)].astype(np.int16).sum(axis=2) // 3
