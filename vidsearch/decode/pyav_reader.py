"""Read a video with PyAV in one forward pass, converting to RGB only the frames that sampling picks."""

from __future__ import annotations

import heapq
import logging
import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, count
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DecodeError
from ..records import Frame, VideoInfo
from .common import NOT_VIDEO, batched, check_readable, check_sampling, pick_nearest, refusal_reason, short_reason
from .display import Display, matrix_rotation

log = logging.getLogger("vidsearch")

_KNOWN_CAUSES = (("Invalid data found when processing input", NOT_VIDEO),)
# frames held to put pts labelled in decoding order back in display order; H.264 reorders at most 16
_REORDER_DEPTH = 16


class PyAVDecoder:
    """One open video: its stream facts, and its frames sampled by time, or its keyframes only.

    Opening reads the packet index, as decord does, and decodes one frame. Times are the frames' own pts
    less the first frame's; Frame.index is the frame's place in the index, its decoded ordinal whenever
    every frame decodes. With keyframes=True the decoder skips all but keyframes: a coarse, fast pass.
    skip_unpicked=False decodes every frame, and codec_options go to ffmpeg's decoder: both are there to
    measure (scripts/bench_decode.py).
    """

    reader = "pyav"

    def __init__(
        self,
        path: Path,
        *,
        keyframes: bool = False,
        skip_unpicked: bool = True,
        codec_options: dict[str, str] | None = None,
    ):
        self.path = path
        self.keyframes = keyframes
        self.skip_unpicked = skip_unpicked
        self.codec_options = dict(codec_options or {})
        self.damaged_packets = 0  # packets the decoder rejected in the last pass
        self._closed = False
        check_readable(path)
        import av

        with self._errors_as_decode_error():
            container = av.open(str(path), metadata_errors="ignore")
            try:
                self._read_index(container)
            finally:
                container.close()

    def frames(self, fps: float, batch_size: int = 16) -> Iterator[list[Frame]]:
        """Sampled frames in time order, in lists of at most `batch_size`; one pass at a time.

        Time sampling takes the frame nearest each t = k/fps; keyframe sampling the first keyframe in each
        1/fps interval. A packet the decoder rejects costs the frames up to the next keyframe, which would
        show its damage; a file that cannot be read on raises DecodeError after the batches before the break.
        """
        check_sampling(fps, batch_size)
        if self._closed:
            raise ValueError(f"{self.path}: decoder is closed")
        picked = self._keyframes_only(fps) if self.keyframes else self._nearest_in_time(fps)
        with self._errors_as_decode_error():
            yield from batched(_in_rgb(picked, self._display), batch_size)

    def close(self) -> None:
        # each pass opens and closes its own container; nothing else is held
        self._closed = True

    def __enter__(self) -> PyAVDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read_index(self, container: Any) -> None:
        """Every packet's pts, and one decoded frame to prove that the stream decodes."""
        import av

        if container.format.name == "tty":  # ffmpeg would render a text file as ANSI art
            raise DecodeError(self.path, NOT_VIDEO)
        # ffmpeg reads a picture as a one-frame video through its image demuxers: image2 and the *_pipe ones
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise DecodeError(self.path, f"a still image ({container.format.name.removesuffix('_pipe')}), not a video")
        if not container.streams.video:
            raise DecodeError(self.path, "no video stream")
        stream = container.streams.video[0]
        stamps: list[int | None] = []
        end, first, failure = None, None, None
        for packet in chain(container.demux(stream), [None]):
            if packet is not None:
                if not packet.size:  # the demuxer's last packet, or Theora's "show the last frame again"
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                stamps.append(stamp)
                if stamp is not None:
                    end = max(stamp if end is None else end, stamp + (packet.duration or 0))
            elif not stamps:
                raise DecodeError(self.path, "no video frames")
            if first is None:
                try:
                    first = next(iter(stream.codec_context.decode(packet)), None)
                except av.error.FFmpegError as error:
                    failure = error
        if first is None:
            reason = short_reason(failure.strerror or str(failure), _KNOWN_CAUSES) if failure else "none came out"
            raise DecodeError(self.path, f"no frame decodes: {reason}")
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        if None not in stamps:
            self._pts = sorted(stamps)
            self._origin, self._time_base = self._pts[0], float(stream.time_base)
            duration = (end - self._origin) * self._time_base
            if end == self._pts[-1] and rate:  # no packet said how long it lasts
                duration += 1 / rate
            measured = len(stamps) / duration if duration > 0 else rate
            # the header's rate where the timeline bears it out (12.5, not 12.499999999999998); not the 50
            # that crowd_topdown_h264.avi claims for its 25 frames a second
            fps = rate if abs(rate - measured) <= 0.01 * measured else measured
            timeline = "pts"
        elif rate:
            self._pts, self._origin, self._time_base = list(range(len(stamps))), 0, 1 / rate
            duration, fps, timeline = len(stamps) / rate, rate, "frame-index"
        else:
            raise DecodeError(self.path, "no usable timestamps and no frame rate")
        self._step = max(round(1 / (rate * self._time_base)), 1) if rate else 1
        # B-frames stored apart from display order: the container labels each picture with its own pts,
        # so a frame that is neither picked nor referenced can go undecoded (_nearest_in_time)
        self._reordered = any(later < earlier for earlier, later in zip(stamps, stamps[1:]))
        # a stream with B-frames whose packets are all in pts order has its pts labelled in decoding order;
        # holding frames to relabel them costs time (25% on cctv_night_ir_hevc.mp4), so only these hold any
        self._mislabelled = not self._reordered and stream.codec_context.has_b_frames
        self._display = Display.of(stream, first)
        width, height = self._display.size(first.width, first.height)
        self.info = VideoInfo(
            duration=duration,
            fps=fps,
            width=width,
            height=height,
            frame_count=len(stamps),
            timeline=timeline,
            declared_duration=declared_duration(container, stream),
        )

    def _nearest_in_time(self, fps: float) -> Iterator[tuple[float, tuple[int, Any]]]:
        wanted = None
        if self._reordered and self.skip_unpicked:
            # skipping only frames that nothing references and sampling cannot pick leaves the picks and
            # their pixels exactly as a full decode gives them; it saves 10-50% on H.264/HEVC with B-frames
            times = [(pts - self._origin) * self._time_base for pts in self._pts]
            wanted = {index for _, index in pick_nearest(zip(times, count()), fps)}
        return pick_nearest(self._stamped(self._decoded(wanted)), fps)

    def _keyframes_only(self, fps: float) -> Iterator[tuple[float, tuple[int, Any]]]:
        interval = -1
        for t, (index, frame) in self._stamped(self._decoded(None)):
            if frame.key_frame and math.floor(t * fps + 1e-9) > interval:
                interval = math.floor(t * fps + 1e-9)
                yield t, (index, frame)

    def _decoded(self, wanted: set[int] | None) -> Iterator[Any]:
        """Frames as the decoder returns them; with `wanted`, non-reference frames not in it are skipped."""
        import av

        container = av.open(str(self.path), metadata_errors="ignore")
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoder = stream.codec_context
            decoder.options = self.codec_options
            if self.keyframes:
                decoder.skip_frame = "NONKEY"
            self.damaged_packets, damaged = 0, False
            for packet in chain(container.demux(stream), [None]):
                if packet is not None and not packet.size:
                    continue  # decoding an empty packet would end the stream
                if wanted is not None and packet is not None and packet.pts is not None:
                    decoder.skip_frame = "DEFAULT" if self._rank(packet.pts) in wanted else "NONREF"
                try:
                    decoded = decoder.decode(packet)
                except av.error.FFmpegError:
                    self.damaged_packets += 1
                    damaged = True
                    continue
                for frame in decoded:
                    damaged = damaged and not frame.key_frame
                    if not damaged:
                        yield frame
            if self.damaged_packets:
                log.warning(
                    "%s: skipped %d damaged packets and the frames that depend on them",
                    self.path,
                    self.damaged_packets,
                )
        finally:
            container.close()

    def _stamped(self, frames: Iterable[Any]) -> Iterator[tuple[float, tuple[int, Any]]]:
        """(t, (index, frame)) in display order; a frame without pts comes a frame after the one before.

        Some files label the pictures with pts in decoding order (opencv_box.mp4, crowd_topdown_h264.avi)
        while the decoder returns the pictures in display order: there each frame out takes the smallest pts
        among the next few, as decord's sorted index does. Decoding keyframes only, HEVC returns pictures
        out of order (intel_car-detection_hevc.mkv), each with its own pts: there the pictures are sorted.
        """
        window = _REORDER_DEPTH if self._mislabelled or self.keyframes else 0
        held: list[tuple[int, int]] = []  # (pts, ordinal) of the frames waiting
        waiting: dict[int, Any] = {}  # ordinal -> frame, in decoding order
        label, last_index, last_t = self._origin - self._step, -1, 0.0
        for ordinal, frame in enumerate(chain(frames, [None] * window)):
            if frame is not None:
                if self.info.timeline == "frame-index":
                    label = ordinal
                else:
                    label = frame.pts if frame.pts is not None else label + self._step
                heapq.heappush(held, (label, ordinal))
                waiting[ordinal] = frame
            if len(held) > window or (frame is None and held):
                pts, own = heapq.heappop(held)
                picture = waiting.pop(own if self.keyframes else next(iter(waiting)))
                last_index = max(self._rank(pts), last_index + 1)
                last_t = max((pts - self._origin) * self._time_base, last_t)
                yield last_t, (last_index, picture)

    def _rank(self, pts: int) -> int:
        return bisect_left(self._pts, pts)

    @contextmanager
    def _errors_as_decode_error(self) -> Iterator[None]:
        import av

        try:
            yield
        except (av.error.FFmpegError, OSError) as error:
            message = getattr(error, "strerror", None) or str(error)
            raise DecodeError(self.path, refusal_reason(self.path, message, _KNOWN_CAUSES)) from error


def _in_rgb(picked: Iterable[tuple[float, tuple[int, Any]]], display: Display) -> Iterator[Frame]:
    from av.video.reformatter import VideoReformatter

    # one converter for the pass: frame.to_ndarray(format="rgb24") builds a new one per frame, 1-2 ms each
    reformatter = VideoReformatter()
    for t, (index, frame) in picked:
        image = np.ascontiguousarray(reformatter.reformat(frame, format="rgb24").to_ndarray())
        yield Frame(index, t, display.show(image))


def declared_duration(container: Any, stream: Any) -> float | None:
    """The seconds the file's header or index says the video lasts, however much of the file is left."""
    import av

    if stream.duration:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """What PyAV reads of a file that decord does not say."""

    display: Display
    matrix_rotation: int  # degrees counterclockwise: decord turns its frames by this much itself
    declared_duration: float | None


def stream_facts(path: Path) -> StreamFacts:
    """How the first video stream is shown, and how long its header says it lasts; from its first frame."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        first = next(container.decode(stream))
        return StreamFacts(Display.of(stream, first), matrix_rotation(first), declared_duration(container, stream))
