"""Load labeled query sets (eval manifest version 1) and score a search function against them."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NoReturn

from vidsearch.errors import ManifestError
from vidsearch.records import Box, Hit

RECALL_AT = (1, 5, 10)
BOX_MATCH_AT = 10
BOX_MAX_DT_S = 1.0
BOX_MIN_IOU = 0.3
# Timestamps and widened bounds are float sums; the slack keeps a hit that sits exactly
# on a labeled boundary from falling out by one rounding step.
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class TimedBox:
    t: float
    box: Box


@dataclass(frozen=True, slots=True)
class Relevant:
    video: str  # relative to the videos root, as written in the manifest
    intervals: tuple[tuple[float, float], ...]
    boxes: tuple[TimedBox, ...]


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str
    target: Literal["person", "any"]
    relevant: tuple[Relevant, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    tolerance_s: float
    queries: tuple[Query, ...]
    path: Path

    def __post_init__(self) -> None:
        # Every metric is a mean over queries; an empty set has none to report.
        if not self.queries:
            raise ManifestError(f"{self.path}: the set has no queries")


@dataclass(frozen=True, slots=True)
class SetReport:
    name: str
    queries: int
    recall_at: dict[int, float]  # keyed by RECALL_AT
    mrr: float
    person_box_match_at_10: float | None  # None: no person queries, or they returned no person hits

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "queries": self.queries,
            **{f"recall@{n}": self.recall_at[n] for n in RECALL_AT},
            "mrr": self.mrr,
            "person_box_match@10": self.person_box_match_at_10,
        }


def load_manifest(path: Path) -> Manifest:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ManifestError(f"{path}: cannot read: {e.strerror or e}") from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError both
        raise ManifestError(f"{path}: invalid JSON: {e}") from e
    return _Parser(path).manifest(raw)


def search_kind(query: Query) -> Literal["person", "all"]:
    return "person" if query.target == "person" else "all"


def is_relevant(hit: Hit, query: Query, tolerance_s: float) -> bool:
    t = hit.item.t
    return any(
        start - tolerance_s - _EPS <= t <= end + tolerance_s + _EPS
        for rel in query.relevant
        if _same_video(hit.video, rel.video)
        for start, end in rel.intervals
    )


def box_matches(hit: Hit, query: Query) -> bool:
    box = hit.item.box
    if box is None:
        return False
    return any(
        abs(hit.item.t - truth.t) <= BOX_MAX_DT_S + _EPS
        and box.iou(truth.box) >= BOX_MIN_IOU - _EPS
        for rel in query.relevant
        if _same_video(hit.video, rel.video)
        for truth in rel.boxes
    )


def evaluate(manifest: Manifest, search: Callable[[str, str, int], Sequence[Hit]], k: int = 10) -> SetReport:
    """Score `search(text, kind, k)`; rank is a hit's position in the returned sequence, not `Hit.rank`."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    first_ranks: list[int | None] = []
    person_hits = matched = 0
    for query in manifest.queries:
        # A search that returns more than asked must not score better for it.
        hits = list(search(query.text, search_kind(query), k))[:k]
        ranks = (rank for rank, hit in enumerate(hits, 1) if is_relevant(hit, query, manifest.tolerance_s))
        first_ranks.append(next(ranks, None))
        if query.target == "person":
            people = [hit for hit in hits[:BOX_MATCH_AT] if hit.item.kind == "person"]
            person_hits += len(people)
            matched += sum(box_matches(hit, query) for hit in people)
    n = len(manifest.queries)
    return SetReport(
        name=manifest.name,
        queries=n,
        recall_at={at: sum(r is not None and r <= at for r in first_ranks) / n for at in RECALL_AT},
        mrr=sum(1 / r for r in first_ranks if r is not None) / n,
        person_box_match_at_10=matched / person_hits if person_hits else None,
    )


def _same_video(video: Path, relative: str) -> bool:
    # Whole components, so "scenes/a.mp4" does not match ".../scenes/ba.mp4".
    want = PurePosixPath(relative).parts
    return video.parts[-len(want):] == want


class _Parser:
    """Turns decoded JSON into records; errors name the file and the JSON location of the problem."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str) -> NoReturn:
        raise ManifestError(f"{self.path}: {where}: {what}" if where else f"{self.path}: {what}")

    def get(self, obj: Any, key: str, where: str) -> Any:
        if not isinstance(obj, dict):
            self.fail(where, f"expected an object, got {type(obj).__name__}")
        if key not in obj:
            self.fail(where, f'missing key "{key}"')
        return obj[key]

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, value: Any, where: str) -> float:
        # bool is an int subclass, and true/false in a time field is a labeling slip.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(where, f"expected a finite number, got {value!r}")
        return float(value)

    def array(self, value: Any, where: str, length: int | None = None) -> list:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            self.fail(where, f"expected an array{f' of {length}' if length else ''}, got {value!r}")
        return value

    def manifest(self, raw: Any) -> Manifest:
        version = self.get(raw, "version", "")
        if isinstance(version, bool) or version != 1:
            self.fail("version", f"unsupported version {version!r}, expected 1")
        tolerance = self.number(self.get(raw, "tolerance_s", ""), "tolerance_s")
        if tolerance < 0:
            self.fail("tolerance_s", f"must not be negative, got {tolerance}")
        items = self.array(self.get(raw, "queries", ""), "queries")
        queries = tuple(self.query(q, f"queries[{i}]") for i, q in enumerate(items))
        dupes = sorted(qid for qid, count in Counter(q.id for q in queries).items() if count > 1)
        if dupes:
            self.fail("queries", f"duplicate ids {dupes}")
        return Manifest(self.string(self.get(raw, "name", ""), "name"), tolerance, queries, self.path)

    def query(self, raw: Any, where: str) -> Query:
        qid = self.string(self.get(raw, "id", where), f"{where}.id")
        text = self.string(self.get(raw, "text", where), f"{where}.text")
        target = self.string(self.get(raw, "target", where), f"{where}.target")
        if target not in ("person", "any"):
            self.fail(f"{where}.target", f'unknown target {target!r}, expected "person" or "any"')
        items = self.array(self.get(raw, "relevant", where), f"{where}.relevant")
        relevant = tuple(self.relevant(r, f"{where}.relevant[{i}]") for i, r in enumerate(items))
        return Query(qid, text, target, relevant)

    def relevant(self, raw: Any, where: str) -> Relevant:
        video = self.string(self.get(raw, "video", where), f"{where}.video")
        parts = PurePosixPath(video).parts
        if not parts or parts[0] == "/" or ".." in parts:
            self.fail(f"{where}.video", f"expected a path relative to the videos root, got {video!r}")
        intervals = []
        for i, item in enumerate(self.array(self.get(raw, "intervals", where), f"{where}.intervals")):
            at = f"{where}.intervals[{i}]"
            start, end = (self.number(v, at) for v in self.array(item, at, 2))
            if start > end:
                self.fail(at, f"start {start} is after end {end}")
            intervals.append((start, end))
        if not intervals:
            self.fail(f"{where}.intervals", "no intervals: nothing in this video could be relevant")
        # Boxes are optional: only hand-checked person queries carry them.
        boxes = self.array(raw.get("boxes", []), f"{where}.boxes")
        timed = tuple(self.timed_box(b, f"{where}.boxes[{i}]") for i, b in enumerate(boxes))
        return Relevant(video, tuple(intervals), timed)

    def timed_box(self, raw: Any, where: str) -> TimedBox:
        t = self.number(self.get(raw, "t", where), f"{where}.t")
        xyxy = self.array(self.get(raw, "xyxy", where), f"{where}.xyxy", 4)
        x1, y1, x2, y2 = (self.number(v, f"{where}.xyxy") for v in xyxy)
        if x1 >= x2 or y1 >= y2:
            self.fail(f"{where}.xyxy", f"empty box {[x1, y1, x2, y2]}")
        return TimedBox(t, Box(x1, y1, x2, y2))
