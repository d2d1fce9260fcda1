"""The command line's view of a running ingest: a progress bar, and one line per file that failed."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from .events import (
    FramesDone, IngestEvent, IngestPlanned, NoOverlayClock, VideoCutShort, VideoFailed, VideoIndexed, VideoNotHeard,
    VideoSkipped,
)


class IngestProgress:
    """Called with each ingest event; draws a tqdm bar over videos with frames/s when `enabled`."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.frames = 0

    def __enter__(self) -> IngestProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, event: IngestEvent) -> None:
        if isinstance(event, IngestPlanned) and self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=event.videos, unit="video", file=sys.stderr, dynamic_ncols=True)
        elif isinstance(event, FramesDone) and self.bar is not None:
            self.frames += event.count
            elapsed = self.bar.format_dict["elapsed"] or 1e-9
            self.bar.set_postfix_str(f"{self.frames} frames, {self.frames / elapsed:.1f} frames/s", refresh=False)
            self.bar.refresh()
        elif isinstance(event, VideoFailed):
            self._line(f"vidsearch: skipped {printable(str(event.path))}: {printable(event.reason)}")
            self._advance()
        elif isinstance(event, VideoCutShort):
            said = cut_short(event.indexed_seconds, event.declared_seconds)
            self._line(f"vidsearch: {printable(str(event.path))}: {said}")
        elif isinstance(event, NoOverlayClock):
            self._line(f"vidsearch: {printable(str(event.path))}: no clock time from its picture: {event.reason}")
        elif isinstance(event, VideoNotHeard):
            self._line(f"vidsearch: {printable(str(event.path))}: {printable(event.reason)}")
        elif isinstance(event, (VideoIndexed, VideoSkipped)):
            self._advance()

    def _advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)


def printable(text: str) -> str:
    """`text` on one line: newlines and other control characters in file names are shown escaped (\\n)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def cut_short(indexed_seconds: float, declared_seconds: float) -> str:
    """How far a video cut short was indexed: "indexed up to 0:02 of 0:30: the file is cut short"."""
    return f"indexed up to {clock(indexed_seconds)} of {clock(declared_seconds)}: the file is cut short"


def clock(seconds: float) -> str:
    """Whole seconds as a player shows them: 0:02, 12:05, 1:06:40."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


_EVENT_NAMES = {
    IngestPlanned: "planned", FramesDone: "frames", VideoCutShort: "cut_short", VideoIndexed: "indexed",
    VideoSkipped: "unchanged", VideoFailed: "failed", NoOverlayClock: "no_overlay_clock", VideoNotHeard: "not_heard",
}


def json_line(event: IngestEvent | dict) -> None:
    """One JSON object per line on stdout, for scripts: {"event": "indexed", "path": ..., ...}."""
    record = event if isinstance(event, dict) else {"event": _EVENT_NAMES[type(event)], **asdict(event)}
    print(json.dumps(record, default=str), flush=True)
