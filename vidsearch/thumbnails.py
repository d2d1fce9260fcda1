"""Pictures of hits: the indexed frame decoded again from its source, its thumbnail, and its boxes drawn.

Frames are found by seeking, not by decoding from the start: a thumbnail late in an hour of video costs one
keyframe interval of decoding. Times are measured as the ingest reader measures them (pts less the stream's
smallest pts), so a hit's `t` names one exact frame.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from .config import CropConfig
from .decode.display import Display
from .errors import ConfigError, DecodeError
from .records import Box, Detection, Frame

# H.264 and HEVC reorder at most 16 pictures: the stream's smallest pts is among its first packets
_HEAD_PACKETS = 64
_REORDER_DEPTH = 16
# seek this far before a wanted time, so a container whose index is coarse still lands before it
_SEEK_MARGIN_S = 0.5
THUMB_SIZE = 320  # longest side of a thumbnail, px


@dataclass(frozen=True, slots=True)
class Timeline:
    """Where a video stream's time zero lies, as the ingest reader counts it."""

    origin: int | None  # smallest pts; None when packets carry no pts and frames are counted instead
    time_base: float
    rate: float  # frames per second, for counting frames when there are no pts
    # B-frames whose packets carry pts in decoding order (opencv_box.mp4, crowd_topdown_h264.avi): pictures
    # come out in display order, so each takes the smallest pts among the next few, as the reader does
    relabel: bool = False

    def seconds(self, pts: int | None, ordinal: int) -> float:
        if self.origin is None or pts is None:
            return ordinal / self.rate
        return (pts - self.origin) * self.time_base


def timeline(container: Any) -> Timeline:
    """The first video stream's timeline, from its first packets (the container is left where they end)."""
    stream = container.streams.video[0]
    stamps = []
    for packet in container.demux(stream):
        if packet.size:
            stamps.append(packet.pts if packet.pts is not None else packet.dts)
            if len(stamps) >= _HEAD_PACKETS:
                break
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    origin = None if not stamps or None in stamps else min(stamps)
    in_order = origin is not None and all(a <= b for a, b in zip(stamps, stamps[1:]))
    return Timeline(origin, float(stream.time_base), rate, relabel=in_order and stream.codec_context.has_b_frames)


def decoded_from(container: Any, start: float, audio: bool = False) -> Iterator[tuple[str, float, Any]]:
    """("video" | "audio", t, frame) as the decoders give them out (pictures in display order), from the keyframe
    at or before `start` to the end.

    Seeks to the keyframe before `start`; where the container's index lands after it (Ogg seeks by
    bisection) or it cannot seek there, decodes from the beginning instead, so no frame at or after `start`
    is missed.
    """
    import av

    video = container.streams.video[0]
    streams = [video] + ([container.streams.audio[0]] if audio and container.streams.audio else [])
    line = timeline(container)
    seeks = [max(0.0, start - _SEEK_MARGIN_S), 0.0] if line.origin is not None and start > _SEEK_MARGIN_S else [0.0]
    for attempt, seek_to in enumerate(seeks):
        try:
            if seek_to == 0.0:
                container.seek(0)
            else:
                container.seek(line.origin + int(seek_to / line.time_base), stream=video, backward=True)
        except av.error.FFmpegError:
            if attempt + 1 < len(seeks):
                continue
            raise
        for stream in streams:
            stream.codec_context.flush_buffers()
        timed = _timed(streams, line, container.demux(*streams))
        held: list[tuple[str, float, Any]] = []  # audio decoded before the first picture says the seek is good
        for kind, t, frame in timed:
            if kind == "audio":
                held.append((kind, t, frame))
                continue
            if t > start + 1e-6 and attempt + 1 < len(seeks):
                break  # landed after `start`: decode from the beginning
            yield from held
            yield kind, t, frame
            yield from timed
            return
        else:
            yield from held
            return


def _timed(streams: list[Any], line: Timeline, packets: Iterator[Any]) -> Iterator[tuple[str, float, Any]]:
    """Frames of the demuxed packets, then what the decoders still hold, each with its time in seconds."""
    video = streams[0]
    ordinal, audio_t = 0, 0.0
    labels: list[int] = []  # pts waiting to be given to pictures, when relabelling
    pictures: deque[Any] = deque()

    def stamped(stream: Any, frames: list[Any]) -> Iterator[tuple[str, float, Any]]:
        nonlocal ordinal, audio_t
        for frame in frames:
            if stream is video and line.relabel and frame.pts is not None:
                heapq.heappush(labels, frame.pts)
                pictures.append(frame)
                if len(pictures) > _REORDER_DEPTH:
                    yield "video", line.seconds(heapq.heappop(labels), 0), pictures.popleft()
                continue
            if stream is video:
                yield "video", line.seconds(frame.pts, ordinal), frame
                ordinal += 1
                continue
            if frame.pts is not None:
                audio_t = float(frame.pts * stream.time_base) - (line.origin or 0) * line.time_base
            yield "audio", audio_t, frame
            audio_t += frame.samples / frame.sample_rate

    import av

    # an empty packet would end its decoder's stream (Theora sends one to show a frame again); None, once per
    # stream at the end, drains the decoders
    work = chain(((p.stream, p) for p in packets if p.size), ((stream, None) for stream in streams))
    damaged = False
    for stream, packet in work:
        try:
            frames = stream.codec_context.decode(packet)
        except av.error.FFmpegError:
            # as the ingest reader does: a rejected packet costs the pictures up to the next keyframe
            damaged = damaged or stream is video
            continue
        if stream is video:
            kept = []
            for frame in frames:
                damaged = damaged and not frame.key_frame
                if not damaged:
                    kept.append(frame)
            frames = kept
        yield from stamped(stream, frames)
    while pictures:
        yield "video", line.seconds(heapq.heappop(labels), 0), pictures.popleft()


def grab_frame(path: Path, t: float) -> np.ndarray:
    """The frame shown at `t` seconds (a hit's time), H x W x 3 RGB, turned and stretched as the ingest reader
    gives it, so that the hit's boxes fit it."""
    import av

    if not path.is_file():
        raise DecodeError(path, "the source file is gone")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            previous = None
            for _, frame_t, frame in decoded_from(container, t):
                if frame_t >= t - 1e-6:
                    nearer = previous is not None and t - previous[0] < frame_t - t
                    return _shown(stream, previous[1] if nearer else frame)
                previous = (frame_t, frame)
            if previous is None:
                raise DecodeError(path, f"no frame decodes at {t:.3f} s")
            return _shown(stream, previous[1])
    except av.error.FFmpegError as error:
        raise DecodeError(path, error.strerror or str(error)) from None


def _shown(stream: Any, frame: Any) -> np.ndarray:
    return Display.of(stream, frame).show(frame.to_ndarray(format="rgb24"))


def crop_pixels(image: np.ndarray, box: Box, config: CropConfig) -> np.ndarray:
    """The box with its margin of context, as ingest cut it for the model (however small it is)."""
    from .detect import crop

    whatever_size = replace(config, min_width=0, min_height=0)
    return crop(Frame(0, 0.0, image), Detection(box, 1.0, "person"), whatever_size).image


def thumbnail(image: np.ndarray, size: int = THUMB_SIZE):
    """A PIL image whose longest side is at most `size`."""
    from PIL import Image

    picture = Image.fromarray(image)
    picture.thumbnail((size, size))
    return picture


@dataclass(frozen=True, slots=True)
class Marked:
    """A box to draw with its caption; the hit itself is drawn in the stronger colour."""

    box: Box
    caption: str
    is_hit: bool


def draw_boxes(image: np.ndarray, marks: Sequence[Marked], title: str = ""):
    """The frame with each box and its caption drawn, and a title line on top (PIL's own font: no download)."""
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    size = max(12, picture.height // 36)
    font = ImageFont.load_default(size=size)
    width = max(2, picture.height // 240)
    for mark in sorted(marks, key=lambda m: m.is_hit):  # the hit last, on top
        colour = (255, 40, 40) if mark.is_hit else (255, 220, 0)
        draw.rectangle(mark.box.as_list(), outline=colour, width=width)
        _label(draw, (mark.box.x1, mark.box.y1), mark.caption, font, colour)
    if title:
        _label(draw, (0, size + 8), title, font, (255, 255, 255))
    return picture


def _label(draw, at: tuple[float, float], text: str, font, background: tuple[int, int, int]) -> None:
    """Text on a filled strip just above `at` (below the frame's top edge when there is no room)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    height = bottom - top + 6
    x, y = at[0], max(0.0, at[1] - height)
    draw.rectangle([x, y, x + right - left + 8, y + height], fill=background)
    draw.text((x + 4, y + 3 - top), text, fill=(0, 0, 0), font=font)


def read_picture(path: Path) -> np.ndarray:
    """A picture file as RGB pixels, turned upright as its EXIF orientation says (phone photos)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return np.asarray(ImageOps.exif_transpose(picture).convert("RGB"))
    # ImportError: ultralytics patches Image.open to try an optional HEIF plugin on files PIL cannot read
    except (OSError, UnidentifiedImageError, ImportError):
        raise ConfigError(f"{path}: not a readable image") from None


def save_jpeg(picture, path: Path, quality: int = 90) -> Path:
    """A PIL image or an RGB array, written whole or not at all: a reader beside the writer never sees half a file."""
    from PIL import Image

    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            picture.convert("RGB").save(file, format="JPEG", quality=quality)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path
