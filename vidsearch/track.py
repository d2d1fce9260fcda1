"""Group one video's detections across sampled frames into tracks, and pick which crops to embed.

ultralytics' trackers (ByteTrack, BoT-SORT) assume dense frames; at one sampled frame per second a walking
person's boxes in consecutive samples often do not overlap at all. So association here is by the distance
between box centres relative to the box's height and the time between samples, with a size check, which
survives those gaps; and, where people cross, by the colours of their upper and lower body.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .config import TrackConfig
from .records import Appearance, Box, FoundPerson, SampledFrame


@dataclass(slots=True)
class _Track:
    number: int
    last_box: Box
    last_t: float
    colours: np.ndarray
    window_start: float
    candidate: int | None = None  # key of the best crop seen in the current window
    candidate_quality: float = -1.0


@dataclass(slots=True)
class Tracker:
    """Feed detections frame by frame; each track hands out its best crop once per time window."""

    config: TrackConfig
    # track numbers; trackers of one video (one per family of classes) share it, so numbers stay unique
    numbers: Iterator[int] = field(default_factory=itertools.count)
    _tracks: list[_Track] = field(default_factory=list)
    _last_t: float = -math.inf  # time of the last frame seen or held

    def step(
        self, t: float, detections: list[tuple[int, Box, float, np.ndarray]]
    ) -> tuple[list[int], list[int]]:
        """Detections of one frame as (key, box, score, colour signature); returns each one's track and the
        keys now chosen."""
        chosen: list[int] = []
        for track in [tr for tr in self._tracks if t - tr.last_t > self.config.max_gap_s]:
            chosen.extend(self._close(track))
        pairs = sorted(
            (cost, ti, di)
            for ti, track in enumerate(self._tracks)
            for di, (_, box, _, colours) in enumerate(detections)
            if (cost := self._cost(track, t, box, colours)) <= 1.0
        )
        track_of: dict[int, _Track] = {}
        used_tracks: set[int] = set()
        for _, ti, di in pairs:
            if ti not in used_tracks and di not in track_of:
                used_tracks.add(ti)
                track_of[di] = self._tracks[ti]
        numbers = []
        for di, (key, box, score, colours) in enumerate(detections):
            track = track_of.get(di)
            if track is None:
                track = _Track(number=next(self.numbers), last_box=box, last_t=t, colours=colours, window_start=t)
                self._tracks.append(track)
            elif t - track.window_start >= self.config.crop_window_s:
                chosen.extend(self._flush(track))
                track.window_start = t
            track.last_box, track.last_t = box, t
            track.colours = 0.5 * (track.colours + colours)
            quality = view_quality(box, score)
            if quality > track.candidate_quality:
                track.candidate, track.candidate_quality = key, quality
            numbers.append(track.number)
        self._last_t = t
        return numbers, chosen

    def _cost(self, track: _Track, t: float, box: Box, colours: np.ndarray) -> float:
        """The centre's shift against how far a person can move in the time since the track was last seen
        (so the same walker is followed whether samples are 0.5 s or 2 s apart), plus the colour difference;
        above 1 they are not the same person."""
        reach = self.config.jitter + self.config.max_speed * max(t - track.last_t, 0.0)
        difference = colour_distance(track.colours, colours)
        if difference > self.config.max_colour_distance:
            return math.inf
        return _distance(track.last_box, box) / reach + difference

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


def colour_signature(image: np.ndarray) -> np.ndarray:
    """Colour histograms (4 levels per channel) of the upper and lower half of a person's crop, each summing to 1."""
    height = image.shape[0]
    step = max(1, min(image.shape[:2]) // 32)  # a coarse grid of pixels is enough for a histogram
    middle = height // 2
    halves = (
        image[height // 8 : max(middle, height // 8 + 1) : step, ::step],
        image[middle : max(height * 7 // 8, middle + 1) : step, ::step],
    )
    signature = []
    for half in halves:
        bins = (half.reshape(-1, 3) >> 6).astype(np.int64)
        counts = np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64).astype(np.float32)
        signature.append(counts / max(counts.sum(), 1.0))
    return np.concatenate(signature)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of the two halves' histograms, averaged: 0 the same colours, 1 none shared."""
    overlap = np.sqrt(a * b).reshape(2, -1).sum(axis=1)
    return float(np.mean(np.sqrt(np.clip(1.0 - overlap, 0.0, 1.0))))


def view_quality(box: Box, score: float) -> float:
    """Confident and large views of a person make the crops that describe them best."""
    return score * math.sqrt(max(box.width * box.height, 0.0))


def summarize_tracks(
    frames: Sequence[SampledFrame], persons: Sequence[FoundPerson], person_vectors: np.ndarray
) -> list[Appearance]:
    """One appearance per track, in order of first sight; `person_vectors` follow the embedded persons' order."""
    vector_of = {}
    for position, person in enumerate(persons):
        if person.embedded:
            vector_of[position] = person_vectors[len(vector_of)]
    by_track: dict[int, list[int]] = defaultdict(list)
    for position, person in enumerate(persons):
        by_track[person.track].append(position)
    appearances = []
    for track, positions in by_track.items():
        embedded = [p for p in positions if p in vector_of]
        if not embedded:
            continue
        times = [frames[persons[p].frame_position].t for p in positions]
        best = max(embedded, key=lambda p: view_quality(persons[p].detection.box, persons[p].detection.score))
        pooled = np.mean([vector_of[p] for p in embedded], axis=0)
        labels = Counter(persons[p].detection.label for p in positions)
        appearances.append(
            Appearance(
                track=track, start=min(times), end=max(times), detections=len(positions), best=best,
                pooled=(pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32),
                label=labels.most_common(1)[0][0],
                direction=travel_direction(times, [persons[p].detection.box for p in positions]),
            )
        )
    return sorted(appearances, key=lambda a: (a.start, a.track))


TRAVEL_DIRECTIONS = ("left", "right", "towards", "away", "still")
# a track goes towards or away when its box grows or shrinks by this factor over the track; else sideways when its
# centre travels this many box widths; else it stays still. Depth comes first: a thing coming closer also drifts
# sideways in the picture, away from the vanishing point, while one crossing the view keeps its size.
_DEPTH_FACTOR = 1.25
_SIDEWAYS_WIDTHS = 1.0


def travel_direction(times: Sequence[float], boxes: Sequence[Box]) -> str | None:
    """Where a track went in the picture (TRAVEL_DIRECTIONS), from least-squares lines through its log box heights
    and box centres over time; None for a track seen at one moment only."""
    t = np.asarray(times, np.float64)
    if len(t) < 2 or np.ptp(t) <= 0:
        return None
    span = float(np.ptp(t))
    depth = np.polyfit(t, np.log(np.maximum([b.height for b in boxes], 1.0)), 1)[0] * span
    if abs(depth) >= math.log(_DEPTH_FACTOR):
        return "towards" if depth > 0 else "away"
    centres = [(b.x1 + b.x2) / 2 for b in boxes]
    sideways = np.polyfit(t, centres, 1)[0] * span / max(float(np.mean([b.width for b in boxes])), 1.0)
    if abs(sideways) >= _SIDEWAYS_WIDTHS:
        return "right" if sideways > 0 else "left"
    return "still"


def _distance(a: Box, b: Box) -> float:
    """Centre distance in units of the taller box's height; infinite when the sizes disagree too much."""
    ratio = b.height / a.height if a.height > 0 else math.inf
    if not 0.6 <= ratio <= 1.67:
        return math.inf
    dx = (a.x1 + a.x2 - b.x1 - b.x2) / 2
    dy = (a.y1 + a.y2 - b.y1 - b.y2) / 2
    return math.hypot(dx, dy) / max(a.height, b.height)
