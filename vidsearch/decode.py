"""Decode a video file with decord and sample its frames by presentation time."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import DecodeError
from .records import Frame, VideoInfo

# decord's errors read "[12:00:00] /github/workspace/src/video/video_reader.cc:151: Check failed: ...";
# each known cause maps to the words a user needs, keyed by a fragment of decord's own text.
_KNOWN_CAUSES = (
    ("Error reading", "not a video file or unsupported container"),
    ("cannot find video stream", "no video stream"),
    ("Invalid frame count", "no video frames"),
    # ffmpeg cannot build the pixel converter when the stream never yields a frame
    ("Cannot create buffer source", "no video frames"),
    # decord's decoder thread stops when ffmpeg rejects a packet; the main thread only sees that check
    ("threaded_decoder", "decoder failed on a packet"),
)
_CPP_PREFIX = re.compile(r"^\[[\d:]+\]\s+\S+:\d+:\s*")
_MAX_REASON = 160


class VideoDecoder:
    """One open video: its stream facts, and its frames sampled at a rate per second."""

    def __init__(self, path: Path, *, num_threads: int = 0):
        self.path = path
        _check_readable(path)
        decord = _quiet_decord()
        with self._errors_as_decode_error():
            self._reader = decord.VideoReader(str(path), num_threads=num_threads)
            frame_count = len(self._reader)
            if frame_count == 0:  # decord asserts this itself, unless Python runs with -O
                raise DecodeError(path, "no video frames")
            stamps = np.asarray(self._reader.get_frame_timestamp(range(frame_count)), np.float64)
            # decoding one frame here turns a stream that cannot decode at all into an error at open
            height, width, _ = self._reader[0].shape
        avg_fps = float(self._reader.get_avg_fps())
        if _usable_timeline(stamps):
            self._times = stamps[:, 0]
            duration, timeline = float(stamps[-1].max()), "pts"
        elif math.isfinite(avg_fps) and avg_fps > 0:
            self._times = np.arange(frame_count) / avg_fps
            duration, timeline = frame_count / avg_fps, "frame-index"
        else:
            raise DecodeError(path, "no usable timestamps and no frame rate")
        self.info = VideoInfo(
            duration=duration,
            fps=avg_fps,
            width=int(width),
            height=int(height),
            frame_count=frame_count,
            timeline=timeline,
        )

    def sample_indices(self, fps: float) -> list[int]:
        """Frames nearest to t = 0, 1/fps, 2/fps ... up to the last frame, each taken once."""
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        times = self._times
        # the epsilon keeps a target that falls exactly on the last frame despite float32 rounding
        targets = np.arange(math.floor(times[-1] * fps + 1e-6) + 1) / fps
        after = np.minimum(np.searchsorted(times, targets), len(times) - 1)
        before = np.maximum(after - 1, 0)
        nearest = np.where(targets - times[before] <= times[after] - targets, before, after)
        return np.unique(nearest).tolist()

    def frames(self, fps: float, batch_size: int = 16) -> Iterator[list[Frame]]:
        """Sampled frames in time order, in lists of at most `batch_size`.

        A stream that breaks partway raises DecodeError after yielding the batches before the break.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        indices = self.sample_indices(fps)
        if self.info.timeline == "pts":
            images = self._by_seeking(indices, batch_size)
        else:
            images = self._in_order(indices)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            with self._errors_as_decode_error(chunk):
                batch = [next(images) for _ in chunk]
            yield [Frame(index, float(self._times[index]), image) for index, image in zip(chunk, batch)]

    def close(self) -> None:
        # decord has no close: its ffmpeg context is freed when the reader is collected
        self._reader = None

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_reader(self):
        if self._reader is None:
            raise ValueError(f"{self.path}: decoder is closed")
        return self._reader

    def _by_seeking(self, indices: list[int], batch_size: int) -> Iterator[np.ndarray]:
        reader = self._open_reader()
        for start in range(0, len(indices), batch_size):
            yield from reader.get_batch(indices[start : start + batch_size]).asnumpy()

    def _in_order(self, indices: list[int]) -> Iterator[np.ndarray]:
        """Walk the stream frame by frame from the start, keeping the wanted ones.

        decord seeks by pts, so without usable pts get_batch lands on wrong frames
        (on crowd_topdown_h264.avi it returned frame 8's picture for frame 136).
        """
        reader = self._open_reader()
        reader.seek(0)
        wanted = set(indices)
        for position in range(indices[-1] + 1):
            try:
                frame = reader.next()
            except StopIteration:
                raise RuntimeError(f"stream ended at frame {position}") from None
            if position in wanted:
                yield frame.asnumpy()

    @contextmanager
    def _errors_as_decode_error(self, chunk: list[int] | None = None) -> Iterator[None]:
        import decord

        try:
            yield
        except (RuntimeError, AssertionError, decord.DECORDError) as error:
            reason = _cause(str(error))
            if chunk is not None:
                reason = f"frames {chunk[0]}-{chunk[-1]} of {self.info.frame_count}: {reason}"
            raise DecodeError(self.path, reason) from error


def _quiet_decord():
    import decord

    # ffmpeg prints a line per damaged packet; the DecodeError already says what failed
    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _check_readable(path: Path) -> None:
    """Catch what decord would only call "Error reading", with the reason it leaves out."""
    try:
        with open(path, "rb") as file:
            empty = not file.read(1)
    except OSError as error:
        raise DecodeError(path, (error.strerror or type(error).__name__).lower()) from error
    if empty:
        raise DecodeError(path, "empty file")


def _usable_timeline(stamps: np.ndarray) -> bool:
    starts = stamps[:, 0]
    return bool(
        np.isfinite(stamps).all()
        and (stamps >= 0).all()
        and (np.diff(starts) >= 0).all()
        and (len(starts) == 1 or starts[-1] > starts[0])
    )


def _cause(message: str) -> str:
    for fragment, cause in _KNOWN_CAUSES:
        if fragment in message:
            return cause
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = _CPP_PREFIX.sub("", lines[0]) if lines else "unknown decord error"
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."
