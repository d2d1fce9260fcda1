"""The shapes of the API's JSON answers, as its OpenAPI schema states them: clients (and the fuzz test) check
answers against these. Fields beyond the stated ones are allowed, so a new field never breaks an old client."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class HitJson(Open):
    """One hit, as `vidsearch query --json` prints it."""

    rank: int
    score: float
    kind: str
    video: str
    t: float
    box: list[float] | None
    id: int
    frame_index: int
    detector_score: float | None


class SpeechHitJson(Open):
    """Words spoken in a video, as `vidsearch query --said ... --json` prints them."""

    rank: int
    score: float
    kind: str
    video: str
    t: float  # the first matched word's start
    start: float
    end: float
    text: str
    words: list[dict[str, Any]]
    id: int  # the speech segment
    frame_id: int | None  # the frame nearest to `t`: a hit id for the picture, the player and export


class Hits(Open):
    query: str | dict[str, Any] | None
    hits: list[HitJson | SpeechHitJson]


class Media(Open):
    url: str
    start: float  # the source time at the player's time 0
    transcoded: bool


class HitDetails(Open):
    """One hit, as `vidsearch describe --json` prints it, with the addresses of its pictures and video."""

    id: int
    kind: str
    video: str
    t: float
    frame_index: int
    box: list[float] | None
    detector_score: float | None
    thumb: str
    frame: str
    media: Media


class Exported(Open):
    exported: list[dict[str, Any]]
    problems: list[str]
    name: str
    downloads: dict[str, dict[str, str]]


class FaceHitJson(Open):
    """One face hit, as `vidsearch query --face --json` prints it."""

    rank: int
    kind: str
    distance: float
    video: str
    t: float
    box: list[float]
    id: int
    identity: int
    group: int | None
    name: str | None


class FaceHits(Open):
    query: dict[str, Any]
    hits: list[FaceHitJson]


class FaceGroups(Open):
    groups: list[dict[str, Any]]
