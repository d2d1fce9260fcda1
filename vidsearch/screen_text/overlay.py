"""A video's start on the clock from the date and time a recorder burned into its picture: many CCTV exports carry
their time only there. A few frames spread over the video are read; the time shown must advance with the video's
own timestamps (the same start from every frame, give or take the overlay's one-second steps) before it is trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ..clock import to_utc
from ..config import ScreenTextConfig
from ..errors import DecodeError
from .reader import TextReader

_YEAR_FIRST = re.compile(r"(?<!\d)(?P<year>\d{4})[-/.](?P<a>\d{1,2})[-/.](?P<b>\d{1,2})(?!\d)")
_YEAR_LAST = re.compile(r"(?<!\d)(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<year>\d{4})(?!\d)")
_TIME = re.compile(r"(?<!\d)(?P<hour>\d{1,2}):(?P<minute>\d{2}):(?P<second>\d{2})(?!\d)\s*(?P<half>[AaPp][Mm])?")
# a start read from frames may differ by this much between them (one-second steps, timestamps between them)
_AGREE_S = 1.5


def clock_shown(lines: Iterable[str], day_first: bool = False) -> datetime | None:
    """The date and time shown in a frame's lines of text (a naive local time), where they read as one."""
    text = "  ".join(lines)
    time = _TIME.search(text)
    date = _YEAR_FIRST.search(text)
    if date is not None:
        month, day = int(date["a"]), int(date["b"])
    elif (date := _YEAR_LAST.search(text)) is not None:
        first, second = int(date["a"]), int(date["b"])
        # a number over 12 can only be the day; otherwise the settings say which comes first
        day_first = first > 12 or (day_first and second <= 12)
        day, month = (first, second) if day_first else (second, first)
    if date is None or time is None:
        return None
    hour = int(time["hour"])
    if time["half"]:
        hour = hour % 12 + (12 if time["half"].upper() == "PM" else 0)
    try:
        return datetime(int(date["year"]), month, day, hour, int(time["minute"]), int(time["second"]))
    except ValueError:
        return None


def start_from_readings(shown: list[tuple[float, datetime]]) -> datetime | None:
    """The clock time at the video's 0 from (timestamp, time shown) pairs; None unless at least two frames, seconds
    apart, agree on it, and no fewer than two thirds of those read."""
    starts = [clock - timedelta(seconds=t) for t, clock in shown]
    if len(starts) < 2:
        return None
    middle = sorted(starts)[len(starts) // 2]
    agreeing = [(t, s) for (t, _), s in zip(shown, starts) if abs((s - middle).total_seconds()) <= _AGREE_S]
    times = [t for t, _ in agreeing]
    if len(agreeing) < 2 or 3 * len(agreeing) < 2 * len(starts) or max(times) - min(times) < 2 * _AGREE_S:
        return None
    # the overlay shows whole seconds: each frame puts the start in [shown - t, shown + 1 - t)
    low = max(s for _, s in agreeing)
    high = min(s for _, s in agreeing) + timedelta(seconds=1)
    if low < high:
        return low + (high - low) / 2
    return sorted(s for _, s in agreeing)[len(agreeing) // 2]  # readings a little apart: their median


@dataclass(frozen=True, slots=True)
class OverlayClock:
    """What the overlay said: the video's start in UTC where it could be trusted, and how many frames were read and
    showed a date and time."""

    start: datetime | None
    read: int
    shown: int

    @property
    def why_not(self) -> str:
        if not self.shown:
            return f"no date and time read in {self.read} frames"
        return f"the date and time read in {self.shown} of {self.read} frames do not advance with the video"


def overlay_start(
    path: Path, duration: float, zone: ZoneInfo, reader: TextReader, config: ScreenTextConfig
) -> OverlayClock:
    """The video's start from its burned-in date and time (read in `zone`), where it advances with the video."""
    from ..decode import open_video

    wanted = max(2, config.overlay_frames)
    shown, read = [], 0
    try:
        # keyframes cost one decode each; spread over the video, they show the clock at distant times
        with open_video(path, sampling="keyframes") as video:
            for batch in video.frames(wanted / max(duration, 1e-3), batch_size=1):
                for frame in batch:
                    read += 1
                    clock = clock_shown(
                        [r.text for r in sorted(reader.read(frame), key=lambda r: (r.box.y1, r.box.x1))],
                        config.overlay_day_first,
                    )
                    if clock is not None:
                        shown.append((frame.t, clock))
                if read >= wanted:
                    break
    except DecodeError:
        pass  # the frames read before the error still tell
    local = start_from_readings(shown)
    return OverlayClock(None if local is None else to_utc(local, zone), read, len(shown))
