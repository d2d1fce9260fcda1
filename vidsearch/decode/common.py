"""What both readers share: the rule that picks frames by time, argument checks, and the wording of errors."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import DecodeError

T = TypeVar("T")

NOT_VIDEO = "not a video file or unsupported container"
_CPP_PREFIX = re.compile(r"^\[[\d:]+\]\s+\S+:\d+:\s*")
_MAX_REASON = 160
# frames this close to equally near a target count as a tie: decord's float32 stamps break the exact ties of
# 12.5 fps at whole seconds either way, by a few microseconds
_TIE = 1e-4


def pick_nearest(stamped: Iterable[tuple[float, T]], fps: float) -> Iterator[tuple[float, T]]:
    """Of (t, item) pairs in time order, the one nearest each t = k/fps (a tie goes to the earlier), each once.

    Targets run from 0 up to the last time; the epsilon keeps a target that falls exactly on the last frame
    despite float32 rounding. Reads one pair ahead, so it can run over frames as they are decoded.
    """
    k, previous, taken = 0, None, False
    for current in stamped:
        current_taken = False
        while k / fps <= current[0]:
            if previous is not None and k / fps - previous[0] <= current[0] - k / fps + _TIE:
                if not taken:
                    taken = True
                    yield previous
            elif not current_taken:
                current_taken = True
                yield current
            k += 1
        previous, taken = current, current_taken
    if previous is not None and not taken and k <= math.floor(previous[0] * fps + 1e-6):
        yield previous


def check_sampling(fps: float, batch_size: int) -> None:
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_readable(path: Path) -> None:
    """Catch what the libraries would only call unreadable, with the reason they leave out."""
    try:
        with open(path, "rb") as file:
            empty = not file.read(1)
    except OSError as error:
        raise DecodeError(path, (error.strerror or type(error).__name__).lower()) from error
    if empty:
        raise DecodeError(path, "empty file")


def short_reason(message: str, known_causes: tuple[tuple[str, str], ...]) -> str:
    """A known cause in the user's words, else the message's first line without a C++ source prefix, cut short.

    `known_causes` maps a fragment of the library's own text to the words a user needs.
    """
    for fragment, cause in known_causes:
        if fragment in message:
            return cause
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = _CPP_PREFIX.sub("", lines[0]) if lines else "unknown decoder error"
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."
