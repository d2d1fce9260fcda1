"""What both readers share: the rule that picks frames by time, argument checks, and the wording of errors."""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import DecodeError

T = TypeVar("T")

NOT_VIDEO = "not a video file or unsupported container"
UNFINISHED_RECORDING = "an unfinished or truncated recording with no index (moov box)"
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


def refusal_reason(path: Path, message: str, known_causes: tuple[tuple[str, str], ...]) -> str:
    """short_reason, except that an MP4 or MOV with media data but no index is named for what it is."""
    reason = short_reason(message, known_causes)
    return UNFINISHED_RECORDING if reason == NOT_VIDEO and _lacks_its_index(path) else reason


def _lacks_its_index(path: Path) -> bool:
    """Whether the file's top-level ISO-BMFF boxes hold media data (mdat) but no index (moov).

    Cameras write the index last; a recording cut off by a crash or a full card has none, and FFmpeg
    calls such a file invalid data like any other.
    """
    kinds = set()
    try:
        with open(path, "rb") as file:
            end, offset = file.seek(0, 2), 0
            while offset + 8 <= end:
                file.seek(offset)
                header = file.read(16)
                size, kind = struct.unpack(">I4s", header[:8])
                if not all(32 <= byte < 127 for byte in kind):
                    break  # not a box: not ISO-BMFF from here on
                if size == 1 and len(header) == 16:
                    size = struct.unpack(">Q", header[8:])[0]  # a box over 4 GiB
                elif size == 0:
                    size = end - offset  # the last box, to the end of the file
                if size < 8:
                    break
                kinds.add(kind)
                offset += size
    except OSError:
        return False
    return b"mdat" in kinds and b"moov" not in kinds


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
