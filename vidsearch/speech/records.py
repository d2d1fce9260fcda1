"""What was said, as records: the words the recognizer heard with their times, the segments they make, and what a
`said` query matched among them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..clock import iso


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """One word as the speech recognizer heard it, with its time in the video (seconds)."""

    start: float
    end: float
    word: str
    probability: float

    def to_json(self) -> dict:
        return {
            "start": round(self.start, 3), "end": round(self.end, 3), "word": self.word.strip(),
            "probability": round(self.probability, 4),
        }


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """A stretch of speech: its text and words, and how sure the recognizer was that it is speech at all."""

    start: float
    end: float
    text: str
    language: str
    avg_logprob: float  # mean log-probability of its tokens
    no_speech_prob: float  # the recognizer's belief that the stretch holds no speech
    words: tuple[SpokenWord, ...] = ()


@dataclass(frozen=True, slots=True)
class SpeechMatch:
    """Words of one speech segment that a `said` query matched: the span of the matched words and the segment."""

    segment_id: int
    video: Path
    start: float  # the first matched word's start
    end: float  # the last matched word's end
    text: str
    words: tuple[SpokenWord, ...]  # every word of the segment
    matched: tuple[int, ...]  # positions in `words` that the query matched

    def to_json(self) -> dict:
        return {
            "start": round(self.start, 3), "end": round(self.end, 3), "text": self.text.strip(),
            "words": [dict(word.to_json(), matched=i in self.matched) for i, word in enumerate(self.words)],
        }


@dataclass(frozen=True, slots=True)
class SpeechHit:
    """A ranked search result among what was said."""

    rank: int
    score: float
    match: SpeechMatch
    camera: str | None = None
    time: datetime | None = None  # the wall-clock moment of the first matched word
    frame_id: int | None = None  # the sampled frame nearest to the first matched word: its picture and player

    @property
    def video(self) -> Path:
        return self.match.video

    def to_json(self) -> dict:
        return {
            "rank": self.rank, "score": round(self.score, 6), "kind": "speech", "video": str(self.video),
            "camera": self.camera, "t": round(self.match.start, 3), "time": iso(self.time), "id": self.match.segment_id,
            "frame_id": self.frame_id, **self.match.to_json(),
        }
