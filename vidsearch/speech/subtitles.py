"""Subtitles from a transcript: timed words grouped into short cues (a sentence, at most a line and a half of text,
broken at pauses), shifted to a clip's own time, written as SubRip (.srt) or WebVTT (.vtt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .records import SpokenWord

MAX_CUE_CHARS = 64  # about a line and a half as players show them
MAX_PAUSE_S = 1.0  # a longer silence between words starts a new cue


@dataclass(frozen=True, slots=True)
class Cue:
    start: float  # seconds in the clip
    end: float
    text: str


def cues(words: Sequence[SpokenWord], clip_start: float, clip_end: float) -> list[Cue]:
    """The cues of the words spoken within [clip_start, clip_end) of the source, in the clip's time (0 at its start);
    a word cut by the clip's edge is kept, its time clamped to the clip."""
    inside = [w for w in words if w.end > clip_start and w.start < clip_end]
    groups: list[list[SpokenWord]] = []
    for word in inside:
        last = groups[-1] if groups else None
        if (
            last is None or word.start - last[-1].end > MAX_PAUSE_S
            or last[-1].word.endswith((".", "?", "!"))
            or len(" ".join(w.word for w in last)) + 1 + len(word.word) > MAX_CUE_CHARS
        ):
            groups.append([word])
        else:
            last.append(word)
    length = clip_end - clip_start
    return [
        Cue(
            max(0.0, group[0].start - clip_start), min(length, group[-1].end - clip_start),
            " ".join(w.word for w in group),
        )
        for group in groups
    ]


def srt(timed: Sequence[Cue]) -> str:
    return "".join(
        f"{n}\n{_stamp(cue.start, ',')} --> {_stamp(cue.end, ',')}\n{cue.text}\n\n" for n, cue in enumerate(timed, 1)
    )


def webvtt(timed: Sequence[Cue]) -> str:
    return "WEBVTT\n\n" + "".join(f"{_stamp(cue.start, '.')} --> {_stamp(cue.end, '.')}\n{cue.text}\n\n" for cue in timed)


def _stamp(seconds: float, decimal: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
