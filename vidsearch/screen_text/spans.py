"""Join readings of one text in consecutive kept frames into one span, kept once at its most confident reading: a
caption, a sign or an overlay on screen for minutes is one record, not one per frame."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ScreenTextConfig
from ..records import ScreenText, TextReading
from .fold import fold


@dataclass(slots=True)
class _Open:
    key: str  # the folded text: readings that differ only by the reader's confusions are one text
    first: float
    last: float
    frames: int
    best: TextReading
    best_position: int

    def closed(self) -> ScreenText:
        return ScreenText(
            frame_position=self.best_position, start=self.first, end=self.last, frames=self.frames, best=self.best
        )


class TextSpans:
    """A video's text spans, fed frame by frame in time order."""

    def __init__(self, config: ScreenTextConfig):
        self.max_gap_s = config.max_gap_s
        self.open: list[_Open] = []
        self.done: list[ScreenText] = []

    def add(self, position: int, t: float, readings: list[TextReading]) -> None:
        """The readings of the kept frame at `position` (in the video's list of kept frames), at `t` seconds."""
        self._close_before(t)
        for reading in readings:
            key = fold(reading.text)
            if not key:
                continue
            # the same text twice in one frame (two signs alike) is two spans: a span takes one reading a frame (one
            # extended at this frame ends at t)
            same = [i for i, span in enumerate(self.open) if span.key == key and span.last < t]
            if not same:
                self.open.append(_Open(key, t, t, 1, reading, position))
                continue
            i = max(same, key=lambda j: self.open[j].best.box.iou(reading.box))
            span = self.open[i]
            span.last, span.frames = t, span.frames + 1
            if reading.confidence > span.best.confidence:
                span.best, span.best_position = reading, position

    def hold(self, t: float) -> None:
        """A frame at `t` was dropped as a duplicate of the last kept one: what was on screen still is."""
        for span in self.open:
            if t - span.last <= self.max_gap_s:
                span.last = t

    def finish(self) -> list[ScreenText]:
        self._close_before(float("inf"))
        return sorted(self.done, key=lambda s: (s.start, s.best.box.y1, s.best.box.x1))

    def _close_before(self, t: float) -> None:
        still = []
        for span in self.open:
            if t - span.last > self.max_gap_s:
                self.done.append(span.closed())
            else:
                still.append(span)
        self.open = still
