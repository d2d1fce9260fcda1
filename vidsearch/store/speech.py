"""The catalog's transcripts: segments and timed words written with their video, and found again through the
FTS5 indexes (speech_text over segments, speech_word_text over words, both porter-stemmed, ranked by BM25)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from ..speech.records import SpeechSegment, SpokenWord
from .schema import speech_segments_t, speech_words_t, videos_t


@dataclass(frozen=True, slots=True)
class StoredSegment:
    id: int
    video: Path
    start: float
    end: float
    text: str
    words: tuple[SpokenWord, ...]
    rank: float = 0.0  # BM25 of the query that found it (higher is better); 0 when read without one


def insert_speech(conn: Connection, video_id: int, segments: Sequence[SpeechSegment]) -> None:
    """A video's segments and their words, inside the transaction that writes the video."""
    for segment in segments:
        segment_id = conn.execute(
            speech_segments_t.insert().values(
                video_id=video_id, start=segment.start, end=segment.end, text=segment.text,
                language=segment.language, avg_logprob=segment.avg_logprob, no_speech_prob=segment.no_speech_prob,
            )
        ).inserted_primary_key[0]
        if segment.words:
            conn.execute(
                speech_words_t.insert(),
                [
                    {"segment_id": segment_id, "position": i, "start": w.start, "end": w.end, "word": w.word,
                     "probability": w.probability}
                    for i, w in enumerate(segment.words)
                ],
            )


def find_segments(engine: Engine, expression: str) -> list[StoredSegment]:
    """Segments matching an FTS5 expression, best BM25 first."""
    query = (
        "SELECT s.id, v.path, s.start, s.\"end\", s.text, -bm25(speech_text) AS rank"
        " FROM speech_text JOIN speech_segments s ON s.id = speech_text.rowid JOIN videos v ON v.id = s.video_id"
        " WHERE speech_text MATCH :expression ORDER BY bm25(speech_text)"
    )
    with engine.connect() as conn:
        rows = conn.execute(text(query), {"expression": expression}).all()
        words = _words_of(conn, [row.id for row in rows])
    return [
        StoredSegment(row.id, Path(row.path), row.start, row.end, row.text, words.get(row.id, ()), row.rank)
        for row in rows
    ]


def segments_between(engine: Engine, video: Path, start: float, end: float) -> list[StoredSegment]:
    """A video's segments that overlap the span start..end (seconds), in time order."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(speech_segments_t)
            .join(videos_t, videos_t.c.id == speech_segments_t.c.video_id)
            .where(videos_t.c.path == str(video), speech_segments_t.c.end > start, speech_segments_t.c.start < end)
            .order_by(speech_segments_t.c.start)
        ).all()
        words = _words_of(conn, [row.id for row in rows])
    return [StoredSegment(row.id, video, row.start, row.end, row.text, words.get(row.id, ())) for row in rows]


def words_matching(engine: Engine, words: Iterable[str], segment_ids: Sequence[int]) -> dict[str, set[tuple[int, int]]]:
    """For each query word, the (segment id, position) of the spoken words it matches after stemming."""
    found: dict[str, set[tuple[int, int]]] = {}
    with engine.connect() as conn:
        for word in set(words):
            rows = conn.execute(
                text(
                    "SELECT w.segment_id, w.position FROM speech_word_text JOIN speech_words w"
                    " ON w.id = speech_word_text.rowid WHERE speech_word_text MATCH :word"
                    " AND w.segment_id IN (SELECT value FROM json_each(:ids))"
                ),
                {"word": '"' + word.replace('"', '""') + '"', "ids": _json_ids(segment_ids)},
            ).all()
            found[word] = {(row.segment_id, row.position) for row in rows}
    return found


def spoken_words(engine: Engine) -> list[str]:
    """Every distinct spoken word as written (lower case): what a tolerant match compares the query against."""
    with engine.connect() as conn:
        return list(conn.scalars(select(speech_words_t.c.word).distinct()))


def nearest_frames(engine: Engine, moments: Sequence[tuple[Path, float]]) -> list[int | None]:
    """For each (video, t), the id of the video's sampled frame nearest to t: where a player shows it."""
    with engine.connect() as conn:
        return [
            conn.scalar(
                text(
                    "SELECT f.id FROM frames f JOIN videos v ON v.id = f.video_id WHERE v.path = :path"
                    " ORDER BY abs(f.t - :t) LIMIT 1"
                ),
                {"path": str(video), "t": t},
            )
            for video, t in moments
        ]


def _words_of(conn: Connection, segment_ids: Sequence[int]) -> dict[int, tuple[SpokenWord, ...]]:
    if not segment_ids:
        return {}
    rows = conn.execute(
        select(speech_words_t)
        .where(speech_words_t.c.segment_id.in_(list(segment_ids)))
        .order_by(speech_words_t.c.segment_id, speech_words_t.c.position)
    ).all()
    words: dict[int, list[SpokenWord]] = {}
    for row in rows:
        words.setdefault(row.segment_id, []).append(SpokenWord(row.start, row.end, row.word, row.probability))
    return {key: tuple(value) for key, value in words.items()}


def _json_ids(ids: Sequence[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"
