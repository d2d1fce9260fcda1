"""Export hits as evidence: a frame-accurate MP4 clip, the frame, the crop, the frame with boxes drawn, a record
of where it all came from (source hash, times, model), and a contact sheet of everything exported."""

from __future__ import annotations

import datetime
import html
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .config import CropConfig
from .decode.display import Display
from .errors import DecodeError
from .records import Item
from .speech.records import SpokenWord
from .speech.subtitles import cues, srt, webvtt

_CLIP_TIME_BASE = Fraction(1, 90000)
_AAC_FRAME = 1024  # samples per frame the AAC encoder takes
# decode past the clip's end this far for audio packets stored behind the video ones
_AUDIO_LAG_S = 2.0
# what a browser plays, by container and codec (MP4: H.264, AV1, VP9; WebM: VP8, VP9, AV1), in 4:2:0
_PLAYABLE = {"mp4": {"h264", "av1", "vp9"}, "webm": {"vp8", "vp9", "av1"}}
_PLAYABLE_AUDIO = {"aac", "mp3", "mp3float", "opus", "vorbis", "flac"}


@dataclass(frozen=True, slots=True)
class ClipCut:
    """A clip cut from a source: which source times it holds."""

    path: Path
    start: float  # source time of the clip's first frame: the clip's time 0
    end: float  # source time where its last frame ends
    frames: int
    audio: bool

    def to_json(self) -> dict:
        return {
            "file": self.path.name, "start": round(self.start, 6), "end": round(self.end, 6),
            "duration": round(self.end - self.start, 6), "frames": self.frames, "audio": self.audio,
        }


@dataclass(frozen=True, slots=True)
class PlayableVideo:
    """A file a browser can play for a hit; `start` is the source time at the file's time 0."""

    path: Path
    start: float
    transcoded: bool

    @property
    def media_type(self) -> str:
        return "video/webm" if self.path.suffix.lower() == ".webm" else "video/mp4"


INSTANT_S = 0.001  # shorter than any frame's duration


def cut_clip(source: Path, start: float, end: float, out: Path, *, crf: int = 20, preset: str = "veryfast") -> ClipCut:
    """The source's frames shown in [start, end), re-encoded as H.264 (and its audio as AAC) in an MP4 whose time
    starts at 0 with the first of them.

    Decodes from the keyframe before `start` and drops the frames before it, so the cut is exact to the frame
    whatever the keyframe interval; audio is cut to the sample at the same times.
    """
    import av

    from .thumbnails import decoded_from

    if not source.is_file():
        raise DecodeError(source, "the source file is gone")
    if not end > start:
        raise ValueError(f"clip end {end} is not after its start {start}")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, suffix=".part")
    os.close(handle)
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            container.streams.video[0].thread_type = "AUTO"
            with av.open(temporary, "w", format="mp4", options={"movflags": "+faststart"}) as output:
                writer = _ClipWriter(output, container, crf, preset)
                writer.write(decoded_from(container, max(0.0, start), audio=bool(container.streams.audio)), start, end)
        if not writer.frames:
            raise DecodeError(source, f"no frame between {start:.3f} s and {end:.3f} s")
        os.replace(temporary, out)
    except av.error.FFmpegError as error:
        raise DecodeError(source, error.strerror or str(error)) from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return ClipCut(out, writer.first_t, writer.end_t, writer.frames, writer.audio_samples > 0)


class _ClipWriter:
    """Encodes the frames of one clip; the streams are made when the first picture and sound arrive."""

    def __init__(self, output: Any, source: Any, crf: int, preset: str):
        self.output = output
        self.source_video = source.streams.video[0]
        self.source_audio = source.streams.audio[0] if source.streams.audio else None
        self.crf, self.preset = crf, preset
        self.video = self.audio = self.fifo = self.resampler = None
        self.display = None  # how the source is shown, known with its first picture
        self.frames, self.audio_samples = 0, 0
        self.first_t = self.end_t = self.last_t = math.nan
        self.sound_end = math.inf  # sound stops at the clip's requested end
        self.pending_audio: list[tuple[float, Any]] = []  # sound that came before the clip's first picture

    def write(self, timed, start: float, end: float) -> None:
        video_done, audio_done = False, self.source_audio is None
        self.sound_end = end
        for kind, t, frame in timed:
            if kind == "video":
                if t < start - 1e-6:
                    continue
                if t >= end - 1e-6:
                    if not video_done:
                        self.end_t = t  # the next picture's time: where the last one stops showing
                    video_done = True
                else:
                    self._picture(t, frame)
            elif not audio_done:
                if self.frames == 0:
                    self.pending_audio.append((t, frame))
                    continue
                for held_t, held in self.pending_audio:
                    self._sound(held_t, held)
                self.pending_audio.clear()
                self._sound(t, frame)
                audio_done = t >= end
            if video_done and (audio_done or t > end + _AUDIO_LAG_S):
                break
        if self.frames and math.isnan(self.end_t):  # the source ended inside the clip
            self.end_t = self.last_t + 1 / float(self.source_video.average_rate or 25)
        for held_t, held in self.pending_audio if self.frames else ():
            self._sound(held_t, held)
        self._finish()

    def _picture(self, t: float, frame: Any) -> None:
        if self.video is None:
            rate = Fraction(self.source_video.average_rate or 25).limit_denominator(100000)
            self.video = self.output.add_stream("libx264", rate=rate)
            # the clip shows what the indexed frames show, upright in square pixels, so the hit's box fits it
            self.display = Display.of(self.source_video, frame)
            width, height = self.display.size(frame.width, frame.height)
            # 4:2:0 needs even sides
            self.video.width, self.video.height = width // 2 * 2, height // 2 * 2
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = self.video.codec_context.time_base = _CLIP_TIME_BASE
            self.video.options = {"crf": str(self.crf), "preset": self.preset}
            self.first_t = t
        if not self.display.is_identity:
            import av

            frame = av.VideoFrame.from_ndarray(self.display.show(frame.to_ndarray(format="rgb24")), format="rgb24")
        picture = frame.reformat(width=self.video.width, height=self.video.height, format="yuv420p")
        picture.pts = round((t - self.first_t) / _CLIP_TIME_BASE)
        picture.time_base = _CLIP_TIME_BASE
        self.output.mux(self.video.encode(picture))
        self.frames += 1
        self.last_t = t

    def _sound(self, t: float, frame: Any) -> None:
        import av

        if self.audio is None:
            rate = frame.sample_rate
            layout = "mono" if frame.layout.nb_channels == 1 else "stereo"
            self.audio = self.output.add_stream("aac", rate=rate, layout=layout)
            self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            self.fifo = av.AudioFifo()
            # sound that starts after the first picture keeps its place
            self.audio_samples = max(0, round((t - self.first_t) * rate))
        for converted in self.resampler.resample(frame):
            rate = converted.sample_rate
            samples = converted.to_ndarray()
            first = max(0, round((self.first_t - t) * rate))
            last = min(samples.shape[1], round((self.sound_end - t) * rate))
            if last <= first:
                continue
            kept = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, first:last]), format="fltp", layout=converted.layout.name
            )
            kept.sample_rate = rate
            self.fifo.write(kept)
            self._encode_sound(_AAC_FRAME)

    def _encode_sound(self, size: int | None) -> None:
        """Whole encoder frames of `size` samples, or with None what the fifo holds."""
        while self.fifo.samples and self.fifo.samples >= (size or 1):
            chunk = self.fifo.read(size or self.fifo.samples)
            chunk.pts = self.audio_samples
            chunk.time_base = Fraction(1, chunk.sample_rate)
            self.audio_samples += chunk.samples
            self.output.mux(self.audio.encode(chunk))

    def _finish(self) -> None:
        if self.video is not None:
            self.output.mux(self.video.encode(None))
        if self.audio is not None:
            self._encode_sound(None)
            self.output.mux(self.audio.encode(None))


def browser_playable(path: Path) -> bool:
    """Whether browsers play the file as it is: H.264/AV1/VP9 in MP4, VP8/VP9/AV1 in WebM, 4:2:0, known sound."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            video = container.streams.video[0]
            family = "mp4" if "mp4" in container.format.name else "webm" if path.suffix.lower() == ".webm" else None
            sounds = {stream.codec_context.name for stream in container.streams.audio}
            return (
                family is not None and video.codec_context.name in _PLAYABLE[family]
                and video.codec_context.pix_fmt in ("yuv420p", "yuvj420p") and sounds <= _PLAYABLE_AUDIO
            )
    except (av.error.FFmpegError, IndexError):
        return False


@dataclass(frozen=True, slots=True)
class ExportTarget:
    """One hit to export, with what the archive knows around it."""

    item: Item
    video: Path
    record: dict  # the hit in `query --json` form: score and rank when it came from a search, span, attributes
    neighbours: tuple[Item, ...] = ()  # the other persons detected in the same frame, drawn with it
    words: tuple[SpokenWord, ...] = ()  # what was said around it (source times): the clip's subtitles

    @property
    def span(self) -> tuple[float, float]:
        """The source times the hit covers: an appearance's or a moment's start and end, else its instant."""
        start, end = self.record.get("start"), self.record.get("end")
        return (float(start), float(end)) if start is not None and end is not None else (self.item.t, self.item.t)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What made the hits: written into every evidence record."""

    query: str | dict | None
    model: dict | None  # the archive's CLIP model and weights fingerprint
    detector: dict  # the person detector's weights and their fingerprint
    version: str  # of vidsearch


@dataclass(frozen=True, slots=True)
class ExportedHit:
    id: int
    folder: Path
    clip: ClipCut
    files: dict[str, Path]  # role (clip, frame, crop, boxes, evidence) -> file


@dataclass
class ExportReport:
    out: Path
    exported: list[ExportedHit] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each: the hit and why it was not exported
    sheet: Path | None = None  # the contact sheet page
    grid: Path | None = None  # the contact sheet as one picture

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "exported": [
                {"id": e.id, "folder": str(e.folder), **{role: str(path) for role, path in e.files.items()}}
                for e in self.exported
            ],
            "problems": self.problems,
            "sheet": str(self.sheet) if self.sheet else None,
            "grid": str(self.grid) if self.grid else None,
        }


def export_hits(
    targets: Sequence[ExportTarget], out: Path, provenance: Provenance, *, pad: float, crop: CropConfig
) -> ExportReport:
    """Each hit into its own folder under `out`, then the contact sheet; a hit that fails is a problem line."""
    report = ExportReport(out=out)
    hashes: dict[Path, str] = {}  # one hash per source, however many of its hits are exported
    for target in targets:
        try:
            report.exported.append(_export_one(target, out, provenance, pad, crop, hashes))
        except DecodeError as error:
            report.problems.append(f"hit {target.item.vector_id} ({target.video}): {error.reason}")
    if report.exported:
        report.sheet, report.grid = contact_sheet(report.exported, targets, out)
    return report


def _export_one(
    target: ExportTarget, out: Path, provenance: Provenance, pad: float, crop: CropConfig, hashes: dict[Path, str]
) -> ExportedHit:
    from .identity import file_sha256
    from .thumbnails import Marked, crop_pixels, draw_boxes, grab_frame, save_jpeg

    item = target.item
    folder = out / f"hit-{item.vector_id}"
    image = grab_frame(target.video, item.t)
    first, last = target.span
    start = max(0.0, first - pad)
    # an instant without padding is the one frame shown at it: [t, t + a millisecond) holds just that frame
    clip = cut_clip(target.video, start, max(last + pad, start + INSTANT_S), folder / "clip.mp4")
    files = {"clip": clip.path, "frame": save_jpeg(image, folder / "frame.jpg", quality=95)}
    if item.box is not None:
        files["crop"] = save_jpeg(crop_pixels(image, item.box, crop), folder / "crop.jpg", 95)
    marks = [Marked(n.box, _caption(n), False) for n in target.neighbours if n.box is not None]
    score = target.record.get("score")
    if item.box is not None:
        marks.append(Marked(item.box, f"#{item.vector_id} " + _caption(item), True))
    title = f"{target.video.name}  t={item.t:.2f} s  frame {item.frame_index}" + (
        f"  score {score:.3f}" if score is not None else ""
    )
    files["boxes"] = save_jpeg(draw_boxes(image, marks, title), folder / "boxes.jpg", quality=92)
    lines = cues(target.words, clip.start, clip.end)
    if lines:
        files["srt"] = folder / "clip.srt"
        files["srt"].write_text(srt(lines))
        files["vtt"] = folder / "clip.vtt"
        files["vtt"].write_text(webvtt(lines))
    if target.video not in hashes:
        hashes[target.video] = file_sha256(target.video)
    stat = target.video.stat()
    record = {
        "hit": target.record,
        "query": provenance.query,
        "score": score,
        "box": item.box.as_list() if item.box is not None else None,
        "source": {
            "path": str(target.video), "sha256": hashes[target.video], "size": stat.st_size,
            "modified": _utc(stat.st_mtime),
        },
        "times": {
            "hit": item.t, "span": list(target.span) if target.record.get("start") is not None else None,
            "clip_start": clip.start, "clip_end": clip.end, "pad": pad,
        },
        "clip": clip.to_json(),
        # what was said inside the clip: times in the clip and in the source
        "transcript": [
            {"start": round(c.start, 3), "end": round(c.end, 3), "source_start": round(clip.start + c.start, 3),
             "source_end": round(clip.start + c.end, 3), "text": c.text}
            for c in lines
        ],
        "files": {role: {"file": path.name, "sha256": file_sha256(path)} for role, path in files.items()},
        "model": provenance.model,
        "detector": provenance.detector,
        "vidsearch": provenance.version,
        "exported_at": _utc(datetime.datetime.now(datetime.timezone.utc).timestamp()),
    }
    files["evidence"] = folder / "evidence.json"
    files["evidence"].write_text(json.dumps(record, indent=1) + "\n")
    return ExportedHit(item.vector_id, folder, clip, files)


def _caption(item: Item) -> str:
    return f"person {item.detector_score:.2f}" if item.detector_score is not None else item.kind


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="seconds")


_CELL = 240  # px, a contact sheet cell's longest side


def contact_sheet(exported: Sequence[ExportedHit], targets: Sequence[ExportTarget], out: Path) -> tuple[Path, Path]:
    """An HTML page of every exported hit (its pictures, clip and record) and the same as one JPG grid."""
    from PIL import Image, ImageDraw, ImageFont

    from .thumbnails import save_jpeg

    by_id = {t.item.vector_id: t for t in targets}
    columns = min(4, len(exported))
    rows = math.ceil(len(exported) / columns)
    font = ImageFont.load_default(size=13)
    grid = Image.new("RGB", (columns * (_CELL + 8) + 8, rows * (_CELL + 48) + 8), (32, 32, 32))
    draw = ImageDraw.Draw(grid)
    cards = []
    for n, hit in enumerate(exported):
        target = by_id[hit.id]
        picture_file = hit.files.get("crop", hit.files["frame"])
        with Image.open(picture_file) as picture:
            picture.thumbnail((_CELL, _CELL))
            x, y = 8 + (n % columns) * (_CELL + 8), 8 + (n // columns) * (_CELL + 48)
            grid.paste(picture, (x + (_CELL - picture.width) // 2, y + (_CELL - picture.height) // 2))
        score = target.record.get("score")
        lines = [f"#{hit.id} {target.item.kind}" + (f"  {score:.3f}" if score is not None else ""),
                 f"{target.video.name[:30]}  {target.item.t:.1f} s"]
        draw.multiline_text((x, y + _CELL + 4), "\n".join(lines), fill=(235, 235, 235), font=font, spacing=3)
        relative = {role: path.relative_to(out).as_posix() for role, path in hit.files.items()}
        cards.append(
            f'<figure><a href="{html.escape(relative["boxes"])}"><img src="{html.escape(relative.get("crop", relative["frame"]))}"'
            f' alt="hit {hit.id}"></a><figcaption><b>#{hit.id}</b> {target.item.kind}'
            + (f" · {score:.3f}" if score is not None else "")
            + f"<br>{html.escape(str(target.video))}<br>t = {target.item.t:.2f} s · clip {hit.clip.start:.2f}–{hit.clip.end:.2f} s"
            f'<br><a href="{html.escape(relative["clip"])}">clip</a> · <a href="{html.escape(relative["frame"])}">frame</a>'
            f' · <a href="{html.escape(relative["evidence"])}">evidence</a></figcaption></figure>'
        )
    grid_path = save_jpeg(grid, out / "contact-sheet.jpg", quality=90)
    page = out / "contact-sheet.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>vidsearch export</title><style>"
        "body{font:14px system-ui,sans-serif;background:#202124;color:#e8eaed;margin:16px}"
        "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}"
        "figure{margin:0;background:#2d2e31;padding:8px;border-radius:6px}img{width:100%;height:220px;"
        "object-fit:contain;background:#000}a{color:#8ab4f8}</style>"
        f"<h1>vidsearch export · {len(exported)} hits</h1><main>{''.join(cards)}</main>\n"
    )
    return page, grid_path

