"""Search: text, picture and example queries; filters, candidates from the index or exact over a subset; frame hits
merged into moments and person hits into appearances with their attribute evidence; the min-score policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
import numpy as np

from ..config import Settings
from ..errors import ConfigError, NotFoundError
from ..records import Hit, Item, Kind, VideoOrigin
from ..reports import Description
from ..screen_text.fold import fold, match_score, tolerated_edits
from ..search import EVERYTHING, SearchFilter, best_per_appearance, merge_moments, parse_query, ranked
from ..shards import Shards
from ..store import Catalog
from ..things import kind_choice
from .indexes import KINDS, Indexes
from .models import Models

# "all", "frame", or a family or class of tracked things: "person", "vehicle", "car" (vidsearch.things.kind_choice)
SearchKind = str
TIMED_STEPS = ("model_load_ms", "encode_ms", "index_load_ms", "search_ms", "fetch_ms")


@dataclass(slots=True)
class Timings:
    """Milliseconds a query spent in each step."""

    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMED_STEPS, 0.0))

    @contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000


@dataclass(frozen=True, slots=True)
class Found:
    """A query's ranked hits and the milliseconds of its steps (Archive.query describes them)."""

    hits: list[Hit]
    timings: dict[str, float]


class Searcher:
    def __init__(self, settings: Settings, catalog: Catalog, shards: Shards, models: Models, indexes: Indexes):
        self.settings = settings
        self.catalog = catalog
        self.shards = shards
        self.models = models
        self.indexes = indexes

    def policy(self, where: SearchFilter) -> SearchFilter:
        """The filter a search runs with: without a minimum score of its own, the model's calibrated one."""
        if where.min_score is not None:
            return where
        return replace(where, min_score=self.models.calibrated_min_score())

    def query(
        self, text: str, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING, keep: Callable[[Hit], bool] = lambda hit: True,
    ) -> Found:
        started, clock = time.perf_counter(), Timings()
        parsed = parse_query(text, exclude)
        if not parsed.text:
            raise ConfigError("the query text is empty")
        encoder = self.models.text_encoder()
        loaded = encoder.load_seconds
        with clock.step("encode_ms"):
            vector = self._excluding(encoder.embed_texts([parsed.text]), parsed.excluded)
        mentions = self.models.vocabulary().mentions(parsed.text)
        hits = self._search(vector, k, kind, group, mentions, keep, self.policy(where), clock)[0]
        clock.ms["model_load_ms"] = (encoder.load_seconds - loaded) * 1000
        clock.ms["encode_ms"] -= clock.ms["model_load_ms"]
        clock.ms["total_ms"] = (time.perf_counter() - started) * 1000
        return Found(hits, clock.ms)

    def query_image(
        self, path: Path, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING,
    ) -> list[Hit]:
        from ..thumbnails import read_picture

        vector = self.models.embedder().embed_images([read_picture(path)])
        return self.search_vectors(self._excluding(vector, exclude), k, kind, group, where=self.policy(where))[0]

    def query_like(
        self, hit_id: int, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING,
    ) -> list[Hit]:
        example = self.describe(hit_id)
        appearance = example.appearance
        stored = self.shards.read(sorted(self.catalog.video_ids_of(example.item.kind, [hit_id])))
        vector = stored.vectors[stored.ids == hit_id][:1]
        if not len(vector) and appearance is not None:
            # a person whose own crop was not embedded: the track it belongs to stands for it
            pooled = self.catalog.pooled_vector(appearance.id)
            vector = pooled[None] if pooled is not None else vector
        if not len(vector):
            raise ConfigError(f"hit {hit_id} has no vector to compare with")

        def elsewhere(hit: Hit) -> bool:
            if hit.item.vector_id == hit_id or (appearance and hit.appearance == appearance.id):
                return False
            t = example.item.t
            return not (hit.video == example.video and hit.span and hit.span[0] <= t <= hit.span[1])

        vector = self._excluding(vector, exclude)
        return self.search_vectors(vector, k + 1, kind, group, keep=elsewhere, where=self.policy(where))[0][:k]

    def left_out_without_clock(self, where: SearchFilter) -> int:
        """How many videos a clock filter left out for having no clock time, among those its other parts admit."""
        if not where.clocked:
            return 0
        return sum(
            1 for v in self.catalog.videos(status="indexed")
            if where.matches_video(v.path) and where.matches_camera(v.origin and v.origin.camera)
            and (v.origin is None or v.origin.start is None)
        )

    def describe(self, hit_id: int) -> Description:
        for each in KINDS:
            found = self.catalog.items(each, [hit_id])
            if found:
                item, video = found[hit_id]
                appearance = self.catalog.appearances_of([hit_id]).get(hit_id) if each == "person" else None
                origin = self.catalog.origins([video]).get(video)
                return Description(item=item, video=video, appearance=appearance, origin=origin)
        raise NotFoundError(f"no hit with id {hit_id} in this archive")

    def _excluding(self, vectors: np.ndarray, phrases: Sequence[str]) -> np.ndarray:
        """Scores become similarity to the query minus a share of the similarity to each excluded phrase
        (the inner product is linear, so one search with the difference vector does it)."""
        if not phrases:
            return vectors
        excluded = self.models.text_encoder().embed_texts(list(phrases)).sum(axis=0)
        return vectors - self.settings.search.exclude_weight * excluded

    def search_vectors(
        self, vectors: np.ndarray, k: int = 20, kind: SearchKind = "all", group: bool = True,
        mentions: Sequence = (), keep: Callable[[Hit], bool] = lambda hit: True, where: SearchFilter = EVERYTHING,
    ) -> list[list[Hit]]:
        """Ranked hits for each query vector (see Archive.search_vectors); `where` is taken as given."""
        return self._search(vectors, k, kind, group, mentions, keep, where, Timings())

    def _search(self, vectors, k: int, kind: SearchKind, group: bool, mentions, keep, where, clock: Timings):
        if k < 1:
            raise ConfigError(f"k must be at least 1, not {k}")
        choice = kind_choice(kind, self.settings)
        kinds = choice.kinds

        def wanted(hit: Hit) -> bool:
            of_class = choice.labels is None or hit.item.kind == "frame" or hit.item.label in choice.labels
            return of_class and keep(hit)
        with clock.step("index_load_ms"):
            indexes = self.indexes.load()
        subsets = {each: self._subset(each, where, clock) for each in kinds}
        results = []
        for vector in vectors:
            hits = [
                hit
                for each in kinds
                for hit in self._search_kind(
                    indexes[each], subsets[each], each, vector, k, group, mentions, wanted, where, clock
                )
            ]
            results.append(ranked(hits)[:k])
        return results

    def _subset(self, kind: Kind, where: SearchFilter, clock: Timings) -> np.ndarray | None:
        """The vector ids a narrowing filter admits; None when it admits everything."""
        if not where.narrows:
            return None
        with clock.step("fetch_ms"):
            videos = [
                v.id for v in self.catalog.videos(status="indexed")
                if where.matches_video(v.path) and where.may_hold(v.origin, v.duration)
            ]
            ids = self.catalog.vector_ids_within(kind, videos, where.start, where.end, where.objects)
            if where.screen_text is not None:
                ids = np.intersect1d(ids, self._on_screen(kind, where.screen_text))
            return ids

    def _on_screen(self, kind: Kind, text: str) -> np.ndarray:
        """The vector ids of frames (or persons in frames) within the spans where `text` is read on screen."""
        found = self.catalog.screen_texts(text, tolerated_edits(fold(text)))
        spans = [self.catalog.vector_ids_within(kind, [s.video_id], s.start, s.end) for s, _ in found]
        return np.concatenate(spans) if spans else np.zeros(0, np.int64)

    def query_screen_text(self, text: str, k: int = 20, where: SearchFilter = EVERYTHING) -> list[Hit]:
        """Spans of frames where `text` is read on screen, each hit at its best reading with the text's box; tolerant
        of the reader's confusions (O/0, I/1, spaces: screen_text.fold) and of one wrong character in six."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, not {k}")
        wanted = fold(text)
        if not wanted:
            raise ConfigError("the text to find on screen has no letters or digits")
        found = self.catalog.screen_texts(text, tolerated_edits(wanted))
        origins = self.catalog.origins(stored.video for stored, _ in found)
        hits = [
            _placed(
                Hit(
                    rank=0, score=match_score(wanted, stored.folded, edits), video=stored.video,
                    item=Item(
                        vector_id=stored.frame_id, kind="frame", frame_index=stored.frame_index, t=stored.t,
                        box=stored.reading.box,
                    ),
                    span=(stored.start, stored.end), screen_text=stored.reading, appearance=stored.appearance,
                ),
                origins,
            )
            for stored, edits in found
        ]
        return ranked([hit for hit in hits if where.admits(hit)])[:k]

    def _candidates(self, index, subset: np.ndarray | None, kind: Kind, vector: np.ndarray, fetch: int, clock):
        """(score, id) best first, and whether nothing more is left to fetch. A subset few enough is scored
        exactly; a large one filters the index's candidates."""
        with clock.step("search_ms"):
            if subset is None or len(subset) > self.settings.search.exact_below:
                scores, ids = index.search(vector[None], fetch)
                admitted = ids[0] >= 0 if subset is None else np.isin(ids[0], subset)
                found = [(float(s), int(i)) for s, i in zip(scores[0][admitted], ids[0][admitted])]
                # padding (-1) means the index gave all it can reach: a trained one searches only some lists
                return found, fetch >= index.size or bool((ids[0] < 0).any())
            if not len(subset):
                return [], True
            stored = self.shards.read(sorted(self.catalog.video_ids_of(kind, subset)))
            chosen = np.isin(stored.ids, subset)
            scores = stored.vectors[chosen] @ vector.astype(np.float32)
            order = np.argsort(-scores)[:fetch]
            return [(float(scores[i]), int(stored.ids[chosen][i])) for i in order], fetch >= len(subset)

    def _search_kind(
        self, index, subset, kind: Kind, vector: np.ndarray, k: int, group: bool, mentions, keep, where, clock
    ) -> list[Hit]:
        fetch = k * self.settings.search.overfetch if group else k
        while True:
            candidates, exhausted = self._candidates(index, subset, kind, vector, fetch, clock)
            with clock.step("fetch_ms"):
                meaning = self.catalog.items(kind, [i for _, i in candidates])
                origins = self.catalog.origins(video for _, video in meaning.values())
            # an ingest running beside this reader may have replaced a video since the index was loaded
            hits = [
                hit
                for score, i in candidates if i in meaning
                if where.admits(
                    hit := _placed(Hit(rank=0, score=score, item=meaning[i][0], video=meaning[i][1]), origins)
                )
            ]
            if group and kind == "frame":
                hits = merge_moments(hits, self.settings.search.moment_gap_s)
            elif group:
                with clock.step("fetch_ms"):
                    appearance_of = self.catalog.appearances_of([hit.item.vector_id for hit in hits])
                hits = best_per_appearance(hits, appearance_of, mentions, self.settings.search.attribute_weight)
            hits = ranked(hits, keep)
            below = where.min_score is not None and candidates and candidates[-1][0] < where.min_score
            if len(hits) >= k or exhausted or below:
                return hits[:k]
            fetch *= 4


def _placed(hit: Hit, origins: dict[Path, VideoOrigin]) -> Hit:
    """The hit with its video's camera and its moment on the clock, where the catalog knows them."""
    origin = origins.get(hit.video)
    if origin is None:
        return hit
    return replace(hit, camera=origin.camera, time=origin.clock_time(hit.item.t))
