"""Group one video's detections across sampled frames into tracks, and pick which crops to embed.

ultralytics' trackers (ByteTrack, BoT-SORT) assume dense frames; at one sampled frame per second a walking
person's boxes in consecutive samples often do not overlap at all. So association here is by the distance
between box centres relative to the box's height, with a size check, which survives those gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import TrackConfig
from .records import Box


@dataclass(slots=True)
class _Track:
    number: int
    last_box: Box
    last_t: float
    window_start: float
    candidate: int | None = None  # key of the best crop seen in the current window
    candidate_quality: float = -1.0


@dataclass(slots=True)
class Tracker:
    """Feed detections frame by frame; each track hands out its best crop once per time window."""

    config: TrackConfig
    _tracks: list[_Track] = field(default_factory=list)
    _next: int = 0
    _last_t: float = -math.inf  # time of the last frame seen or held

    def step(self, t: float, detections: list[tuple[int, Box, float]]) -> tuple[list[int], list[int]]:
        """Detections of one frame as (key, box, score); returns each one's track and the keys now chosen."""
        chosen: list[int] = []
        for track in [tr for tr in self._tracks if t - tr.last_t > self.config.max_gap_s]:
            chosen.extend(self._close(track))
        pairs = sorted(
            (cost, ti, di)
            for ti, track in enumerate(self._tracks)
            for di, (_, box, _) in enumerate(detections)
            if (cost := _distance(track.last_box, box)) <= self.config.max_distance
        )
        track_of: dict[int, _Track] = {}
        used_tracks: set[int] = set()
        for _, ti, di in pairs:
            if ti not in used_tracks and di not in track_of:
                used_tracks.add(ti)
                track_of[di] = self._tracks[ti]
        numbers = []
        for di, (key, box, score) in enumerate(detections):
            track = track_of.get(di)
            if track is None:
                track = _Track(number=self._next, last_box=box, last_t=t, window_start=t)
                self._next += 1
                self._tracks.append(track)
            elif t - track.window_start >= self.config.crop_window_s:
                chosen.extend(self._flush(track))
                track.window_start = t
            track.last_box, track.last_t = box, t
            quality = score * math.sqrt(max(box.width * box.height, 0.0))
            if quality > track.candidate_quality:
                track.candidate, track.candidate_quality = key, quality
            numbers.append(track.number)
        self._last_t = t
        return numbers, chosen

    def candidates(self) -> set[int]:
        """Keys of crops that may still be chosen."""
        return {track.candidate for track in self._tracks if track.candidate is not None}

    def hold(self, t: float) -> None:
        """A frame skipped as a duplicate: whoever was in view in the last frame is still there."""
        for track in self._tracks:
            if track.last_t == self._last_t:
                track.last_t = t
        self._last_t = t

    def finish(self) -> list[int]:
        """The last window of every open track."""
        chosen = []
        for track in list(self._tracks):
            chosen.extend(self._close(track))
        return chosen

    def _close(self, track: _Track) -> list[int]:
        self._tracks.remove(track)
        return self._flush(track)

    @staticmethod
    def _flush(track: _Track) -> list[int]:
        key, track.candidate, track.candidate_quality = track.candidate, None, -1.0
        return [] if key is None else [key]


def _distance(a: Box, b: Box) -> float:
    """Centre distance in units of the taller box's height; infinite when the sizes disagree too much."""
    ratio = b.height / a.height if a.height > 0 else math.inf
    if not 0.6 <= ratio <= 1.67:
        return math.inf
    dx = (a.x1 + a.x2 - b.x1 - b.x2) / 2
    dy = (a.y1 + a.y2 - b.y1 - b.y2) / 2
    return math.hypot(dx, dy) / max(a.height, b.height)
