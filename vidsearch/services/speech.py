"""Search what was said: `said` queries over the transcripts, alone, fused with a picture query by reciprocal-rank
fusion, or as a condition on picture hits (the words spoken within some seconds of the hit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..records import Hit
from ..search import EVERYTHING, SearchFilter
from ..speech.query import SaidQuery, fts_expression, matched_positions, parse_said, similar_words, tokens
from ..speech.records import SpeechHit, SpeechMatch
from ..speech.subtitles import cues, webvtt
from ..store import Catalog
from ..store.speech import (
    StoredSegment, find_segments, nearest_frames, segments_between, spoken_words, words_matching,
)
from .searcher import Searcher

# reciprocal-rank fusion: each list adds 1 / (RRF_K + rank) to a hit's score; 60 is the constant of Cormack et al.
# (SIGIR 2009), which damps the difference between the first ranks so that neither list dominates
RRF_K = 60
FUSION = f"reciprocal-rank fusion, k={RRF_K}"
# Whisper's word boundaries run on from one word to the next and fall a few tenths of a second either side of the
# voice (faster-whisper issues #125, #294); a match starts this much before its first word, never before the middle
# of the word said before it, so a player seeking there hears the word from its beginning and little else
SEEK_LEAD_S = 0.25


class SpeechSearch:
    def __init__(self, catalog: Catalog, searcher: Searcher):
        self.catalog = catalog
        self.searcher = searcher

    def matches(
        self, said: str, k: int | None = 20, tolerant: bool = False, where: SearchFilter = EVERYTHING
    ) -> list[SpeechHit]:
        """Segments where the words and "phrases" of `said` were spoken, best BM25 first; each at its matched words.
        `tolerant` also admits words alike in letters or sound (a recognizer's mishearings)."""
        query = parse_said(said)
        if not query.units:
            raise ConfigError("the said query has no words")
        alternatives = self._alternatives(query) if tolerant else None
        found = find_segments(self.catalog.engine, fts_expression(query, alternatives))
        words = words_matching(
            self.catalog.engine, {w for word in query.words for w in (word, *(alternatives or {}).get(word, ()))},
            [segment.id for segment in found],
        )
        origins = self.catalog.origins({segment.video for segment in found})
        hits = []
        for segment in found:
            match = _match(segment, query, words, alternatives)
            origin = origins.get(segment.video)
            hit = SpeechHit(
                rank=0, score=segment.rank, match=match, camera=origin and origin.camera,
                time=origin and origin.clock_time(match.start),
            )
            if _admitted(hit, where):
                hits.append(replace(hit, rank=len(hits) + 1))
            if k is not None and len(hits) == k:
                break
        frames = nearest_frames(self.catalog.engine, [(hit.video, hit.match.start) for hit in hits])
        return [replace(hit, frame_id=frame) for hit, frame in zip(hits, frames)]

    def query(
        self, text: str | None, said: str, k: int = 20, kind: str = "all", within: float | None = None,
        tolerant: bool = False, exclude: Sequence[str] = (), group: bool = True, where: SearchFilter = EVERYTHING,
    ) -> list[Hit | SpeechHit]:
        """`said` alone (or `kind` "speech"): speech hits. With a picture query `text`: its hits that have the
        words spoken within `within` seconds in the same video, each carrying them; without `within`, picture and
        speech hits fused by reciprocal rank (FUSION)."""
        if text is None or kind == "speech":
            return self.matches(said, k, tolerant, where)
        if within is not None:
            spoken: dict[Path, list[SpeechMatch]] = {}
            for hit in self.matches(said, None, tolerant, where):
                spoken.setdefault(hit.video, []).append(hit.match)

            def near(hit: Hit) -> tuple[SpeechMatch, ...]:
                start, end = hit.span or (hit.item.t, hit.item.t)
                return tuple(
                    m for m in spoken.get(hit.video, ()) if m.start <= end + within and m.end >= start - within
                )

            found = self.searcher.query(text, k, kind, exclude, group, where, keep=lambda hit: bool(near(hit)))
            return [replace(hit, said=near(hit)) for hit in found.hits]
        pictures = self.searcher.query(text, k, kind, exclude, group, where).hits
        return fused([pictures, self.matches(said, k, tolerant, where)])[:k]

    def transcript(self, video: Path, start: float, end: float) -> list[StoredSegment]:
        """What was said in a video between two times (seconds), segment by segment."""
        return segments_between(self.catalog.engine, video, start, end)

    def subtitles(self, video: Path, start: float, end: float) -> str:
        """WebVTT of what was said between two source times, its cues in the time of a clip starting at `start`."""
        words = [word for segment in self.transcript(video, start, end) for word in segment.words]
        return webvtt(cues(words, start, end))

    def _alternatives(self, query: SaidQuery) -> dict[str, list[str]]:
        vocabulary = {token for word in spoken_words(self.catalog.engine) for token in tokens(word)}
        return {word: similar_words(word, vocabulary) for word in query.words}


def fused(lists: Sequence[Sequence[Hit | SpeechHit]]) -> list[Hit | SpeechHit]:
    """One ranking from several (FUSION): a hit's score is the sum over the lists of 1 / (RRF_K + its rank)."""
    scored = [(1.0 / (RRF_K + hit.rank), position, hit) for ranking in lists for position, hit in enumerate(ranking)]
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    return [replace(hit, rank=rank, score=score) for rank, (score, _, hit) in enumerate(scored, start=1)]


def _match(
    segment: StoredSegment, query: SaidQuery, words: dict[str, set[tuple[int, int]]],
    alternatives: dict[str, list[str]] | None,
) -> SpeechMatch:
    def matches(word: str, position: int) -> bool:
        return any((segment.id, position) in words.get(w, ()) for w in (word, *(alternatives or {}).get(word, ())))

    positions = matched_positions(query, len(segment.words), matches, adjacent=alternatives is None)
    start = seek_start(segment.words, positions[0]) if positions else segment.start
    end = segment.words[positions[-1]].end if positions else segment.end
    return SpeechMatch(segment.id, segment.video, start, end, segment.text, segment.words, positions)


def seek_start(words: Sequence, position: int) -> float:
    if position == 0:  # the segment's first word: Whisper starts it after the silence, early if anything
        return words[0].start
    before = words[position - 1]
    return max(words[position].start - SEEK_LEAD_S, (before.start + before.end) / 2)


def _admitted(hit: SpeechHit, where: SearchFilter) -> bool:
    """The filter's parts other than the score (BM25 and cosine scores are not comparable), at the first matched
    word."""
    return where.admits_place(hit.video, hit.camera, hit.match.start, hit.time)
