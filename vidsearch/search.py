"""From index candidates to results a person can use: the query's parts, moments, appearances, evidence.

Near-identical frames of one scene and the many crops of one walking person would otherwise fill the top
ten with one thing; here frame hits close in time become one moment and person hits of one track become
one appearance, each shown at its best-matching moment.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatch
from pathlib import Path
from zoneinfo import ZoneInfo

from .attributes import Mention, evidence
from .clock import within_hours
from .records import Hit, StoredAppearance, VideoOrigin

# a minus starts an exclusion where a word starts: after a space, a quote, or at the beginning
_TOKEN = re.compile(r'(?<![^\s"])-"(?P<quoted>[^"]*)"?|(?<![^\s"])-(?P<word>[^\s"]+)|(?P<kept>\S+)')


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which hits may be returned: videos by a path pattern, cameras, a time range within videos, a wall-clock range
    and hours of the day, a minimum score."""

    videos: str | None = None  # glob matched against the whole path or its trailing parts: "scenes/*.mp4"
    start: float | None = None  # seconds into each video
    end: float | None = None
    objects: tuple[str, ...] = ()  # only frames (and persons in frames) that show one of these detector classes
    min_score: float | None = None
    cameras: tuple[str, ...] = ()  # globs over camera names; any may match
    after: datetime | None = None  # wall-clock moments (aware); hits at or after `after` and before `before`
    before: datetime | None = None
    hours: tuple[int, int] | None = None  # minutes of the day in `zone`, start included; across midnight if start > end
    zone: ZoneInfo | None = None  # the zone `hours` are read in
    screen_text: str | None = None  # only frames (and persons in frames) of spans where this text is read on screen

    @property
    def clocked(self) -> bool:
        """Whether it asks for clock time, so that videos without one are left out."""
        return self.after is not None or self.before is not None or self.hours is not None

    @property
    def narrows(self) -> bool:
        """Whether it names a subset of the archive that the catalog can list before any search."""
        return (
            self.videos is not None or self.start is not None or self.end is not None or bool(self.objects)
            or bool(self.cameras) or self.clocked or self.screen_text is not None
        )

    def matches_video(self, path: Path) -> bool:
        return self.videos is None or fnmatch(str(path), self.videos) or fnmatch(str(path), "*/" + self.videos)

    def matches_camera(self, camera: str | None) -> bool:
        return not self.cameras or (camera is not None and any(fnmatch(camera, glob) for glob in self.cameras))

    def may_hold(self, origin: VideoOrigin | None, duration: float | None) -> bool:
        """Whether a video of this origin and length can hold admitted hits (its camera, its span on the clock)."""
        if not self.matches_camera(origin.camera if origin else None):
            return False
        if not self.clocked:
            return True
        if origin is None or origin.start is None:
            return False
        start = datetime.fromtimestamp(origin.start, timezone.utc)
        return (self.before is None or start < self.before) and (
            self.after is None or start + timedelta(seconds=duration or 0.0) >= self.after
        )

    def admits(self, hit: Hit) -> bool:
        return (self.min_score is None or hit.score >= self.min_score) and self.admits_place(
            hit.video, hit.camera, hit.item.t, hit.time
        )

    def admits_place(self, video: Path, camera: str | None, t: float, moment: datetime | None) -> bool:
        """Every part but the score: the video, its camera, `t` seconds into it, and its moment on the clock."""
        return (
            self.matches_video(video)
            and (self.start is None or t >= self.start)
            and (self.end is None or t <= self.end)
            and self.matches_camera(camera)
            and self._admits_time(moment)
        )

    def _admits_time(self, moment: datetime | None) -> bool:
        if not self.clocked:
            return True
        return (
            moment is not None
            and (self.after is None or moment >= self.after)
            and (self.before is None or moment < self.before)
            and (self.hours is None or within_hours(moment, self.hours, self.zone or timezone.utc))
        )


EVERYTHING = SearchFilter()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    text: str  # the phrase every hit is scored on
    excluded: tuple[str, ...]  # phrases whose matches are pushed down


def parse_query(query: str, excluded: Sequence[str] = ()) -> ParsedQuery:
    """`-word` or `-"some words"` where a word starts excludes; a hyphen inside a word, as in t-shirt, does not."""
    kept, dropped = [], [e.strip() for e in excluded if e.strip()]
    for token in _TOKEN.finditer(query):
        if token["kept"] is not None:
            kept.append(token["kept"])
        elif (phrase := (token["quoted"] if token["quoted"] is not None else token["word"]).strip()):
            dropped.append(phrase)
    return ParsedQuery(" ".join(kept), tuple(dropped))


def merge_moments(hits: Sequence[Hit], max_gap_s: float) -> list[Hit]:
    """Frame hits of one video no more than `max_gap_s` apart become one moment: its span, best frame and score."""
    by_video: dict = defaultdict(list)
    for hit in hits:
        by_video[hit.video].append(hit)
    moments = []
    for video_hits in by_video.values():
        video_hits.sort(key=lambda h: h.item.t)
        run = [video_hits[0]]
        for hit in video_hits[1:]:
            if hit.item.t - run[-1].item.t <= max_gap_s:
                run.append(hit)
            else:
                moments.append(_moment(run))
                run = [hit]
        moments.append(_moment(run))
    return ranked(moments)


def _moment(run: list[Hit]) -> Hit:
    best = max(run, key=lambda h: h.score)
    return replace(best, span=(run[0].item.t, run[-1].item.t))


def best_per_appearance(
    hits: Sequence[Hit], appearance_of: dict[int, StoredAppearance], mentions: Sequence[Mention] = (),
    attribute_weight: float = 0.0,
) -> list[Hit]:
    """Crop hits of one appearance become one, at its best-matching crop, with the appearance's span and class.

    When the query names attributes, the appearance's probabilities for them are its evidence, and their
    mean, times `attribute_weight`, is added to the phrase's score.
    """
    best: dict[int, Hit] = {}
    alone = []
    for hit in hits:
        appearance = appearance_of.get(hit.item.vector_id)
        if appearance is None:  # indexed before appearances were kept
            alone.append(hit)
        elif appearance.id not in best or hit.score > best[appearance.id].score:
            best[appearance.id] = hit
    grouped = []
    for appearance_id, hit in best.items():
        appearance = appearance_of[hit.item.vector_id]
        matches = evidence(appearance.attributes, list(mentions))
        bonus = attribute_weight * sum(m.probability for m in matches) / len(matches) if matches else 0.0
        grouped.append(
            replace(
                hit, score=hit.score + bonus, span=(appearance.start, appearance.end), appearance=appearance_id,
                evidence=matches, item=replace(hit.item, label=appearance.label),
            )
        )
    return ranked(grouped + alone)


def ranked(hits: Sequence[Hit], keep: Callable[[Hit], bool] = lambda hit: True) -> list[Hit]:
    """Best score first, ranks from 1."""
    ordered = sorted((h for h in hits if keep(h)), key=lambda h: -h.score)
    return [replace(hit, rank=rank) for rank, hit in enumerate(ordered, 1)]
