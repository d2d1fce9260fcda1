"""Read a video with decord, the reader the product is specified with, moving only forward through it."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DecodeError
from ..records import Frame, VideoInfo
from .common import NOT_VIDEO, check_readable, check_sampling, pick_nearest, refusal_reason
from .display import Display
from .pyav_reader import StreamFacts, stream_facts

# decord's errors read "[12:00:00] /github/workspace/src/video/video_reader.cc:151: Check failed: ..."
_KNOWN_CAUSES = (
    ("Error reading", NOT_VIDEO),
    ("cannot find video stream", "no video stream"),
    ("Invalid frame count", "no video frames"),
    # ffmpeg cannot build the pixel converter when the stream never yields a frame
    ("Cannot create buffer source", "no video frames"),
    # decord's decoder thread stops when ffmpeg rejects a packet; the main thread only sees that check
    ("threaded_decoder", "decoder failed on a packet"),
)


# decord publishes wheels for x86-64 Linux and Windows only, so it is an extra, not part of the base install
NOT_INSTALLED = (
    "the decord reader is not installed: pip install 'vidsearch[decord]' (x86-64 Linux and Windows only), "
    "or use the pyav reader (the default)"
)


def decord_installed() -> bool:
    """Whether decord can be imported, found without importing it."""
    from importlib.util import find_spec

    return find_spec("decord") is not None


class DecordDecoder:
    """One open video: its stream facts, and its frames sampled at a rate per second."""

    reader = "decord"

    def __init__(self, path: Path, *, num_threads: int = 0):
        self.path = path
        check_readable(path)
        decord = _quiet_decord()
        with self._errors_as_decode_error():
            self._reader = decord.VideoReader(str(path), num_threads=num_threads)
            frame_count = len(self._reader)
            try:
                stamps = np.asarray(self._reader.get_frame_timestamp(range(frame_count)), np.float64)
            except IndexError:
                # with no packets indexed, decord counts the frames the header promises but has no pts
                raise DecodeError(path, "no video frames") from None
            self._facts = _facts_or_as_coded(path)
            # decoding one frame here turns a stream that cannot decode at all into an error at open
            height, width, _ = self._shown(self._reader[0].asnumpy()).shape
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
            declared_duration=self._facts.declared_duration,
        )

    def sample_indices(self, fps: float) -> list[int]:
        """Frames nearest to t = 0, 1/fps, 2/fps ... up to the last frame, each taken once."""
        check_sampling(fps, 1)
        return [index for _, index in pick_nearest(zip(self._times.tolist(), count()), fps)]

    def frames(self, fps: float, batch_size: int = 16) -> Iterator[list[Frame]]:
        """Sampled frames in time order, in lists of at most `batch_size`; one pass at a time.

        A stream that breaks partway raises DecodeError after yielding the batches before the break.
        """
        check_sampling(fps, batch_size)
        indices = self.sample_indices(fps)
        chunks = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
        decoded = self._decode_forward(chunks)
        for chunk in chunks:
            with self._errors_as_decode_error(chunk):
                images = next(decoded)
            yield [
                Frame(index, float(self._times[index]), self._shown(image)) for index, image in zip(chunk, images)
            ]

    def close(self) -> None:
        # decord has no close: its ffmpeg context is freed when the reader is collected
        self._reader = None

    def __enter__(self) -> DecordDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _shown(self, image: np.ndarray) -> np.ndarray:
        """decord's picture as a player shows it: decord turns pictures by the display matrix's angle but
        neither mirrors nor stretches them, so its turn is undone and the whole display applied."""
        display = self._facts.display
        if display.is_identity and not self._facts.matrix_rotation:
            return image
        return display.show(np.rot90(image, -round(self._facts.matrix_rotation / 90)))

    def _decode_forward(self, chunks: list[list[int]]) -> Iterator[list[np.ndarray]]:
        """Decode each chunk's frames, moving only forward from the start of the stream.

        get_batch seeks by pts whenever the next frame lies past a keyframe, and that seek lands
        on the wrong picture in some files: frame 4 for frame 250 in intel_car-detection_hevc.mkv,
        2 frames early in opencv_box.mp4, anywhere in crowd_topdown_h264.avi whose pts are broken.
        Within one keyframe interval it decodes and counts frames instead, which is exact; so each
        keyframe is reached by reading the frame just before it, and decord never seeks.
        """
        reader = self._reader
        if reader is None:
            raise ValueError(f"{self.path}: decoder is closed")
        keyframes = reader.get_key_indices()
        reader.seek(0)
        position = 0
        for chunk in chunks:
            images: list[np.ndarray] = []
            run: list[int] = []
            for index in chunk:
                crossed = keyframes[bisect_right(keyframes, position) : bisect_right(keyframes, index)]
                if crossed and run:
                    images.extend(reader.get_batch(run).asnumpy())
                    run = []
                for keyframe in crossed:
                    reader.get_batch([keyframe - 1])
                run.append(index)
                position = index + 1
            images.extend(reader.get_batch(run).asnumpy())
            yield images

    @contextmanager
    def _errors_as_decode_error(self, chunk: list[int] | None = None) -> Iterator[None]:
        import decord

        try:
            yield
        except (RuntimeError, AssertionError, decord.DECORDError) as error:
            reason = refusal_reason(self.path, str(error), _KNOWN_CAUSES)
            if chunk is not None:
                reason = f"frames {chunk[0]}-{chunk[-1]} of {self.info.frame_count}: {reason}"
            raise DecodeError(self.path, reason) from error


def _facts_or_as_coded(path: Path) -> StreamFacts:
    import av

    try:
        return stream_facts(path)
    except (av.error.FFmpegError, StopIteration):
        # PyAV cannot read what decord can: the pictures are taken as decord gives them
        return StreamFacts(Display(), 0, None)


def _quiet_decord():
    try:
        import decord
    except ImportError:
        raise ConfigError(NOT_INSTALLED) from None

    # ffmpeg prints a line per damaged packet; the DecodeError already says what failed
    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _usable_timeline(stamps: np.ndarray) -> bool:
    starts = stamps[:, 0]
    return bool(
        np.isfinite(stamps).all()
        and (stamps >= 0).all()
        and (np.diff(starts) >= 0).all()
        and (len(starts) == 1 or starts[-1] > starts[0])
    )
