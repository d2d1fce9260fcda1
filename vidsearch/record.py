"""Record a live stream into segment files: any input FFmpeg opens (RTSP, RTSPS, HTTP, HLS, UDP, SRT) is copied
without re-encoding into MP4 segments cut at keyframes and named by their start in UTC
(`OUT/CAMERA/2024-05-01_14-00-00.mp4`, which clock.py's name patterns read); a dropped stream is reopened with
back-off. A segment is written as `.part` and renamed when whole, so a crash never leaves a broken `.mp4`."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("vidsearch")

SEGMENT_NAME = "%Y-%m-%d_%H-%M-%S"  # UTC; ingest such folders with --tz UTC
_COPIED_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus", "alac", "flac"})  # what MP4 holds as it is


class Segment:
    """One output file: packets are copied with their times moved so that the segment starts at 0."""

    def __init__(self, path: Path, started_at: datetime, inputs: list, first_pts_s: float):
        import av

        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.started_at = started_at
        self.first_pts_s = first_pts_s
        self.output = av.open(str(self.part), "w", format="mp4")
        self.streams = {stream.index: self.output.add_stream_from_template(stream) for stream in inputs}

    def write(self, packet) -> None:
        shift = int(self.first_pts_s / packet.time_base)
        if packet.pts is None or packet.pts - shift < 0:
            return  # audio from before the segment's first keyframe
        packet.pts -= shift
        packet.dts = packet.dts - shift if packet.dts is not None else packet.pts
        packet.stream = self.streams[packet.stream.index]
        self.output.mux(packet)

    def close(self) -> Path:
        """Finish the file (its index written) and give it its final name."""
        self.output.close()
        self.part.rename(self.path)
        return self.path


class Recorder:
    """Records `url` into `out/camera/` until stop(); `on_segment(path)` is called as each segment closes."""

    def __init__(
        self, url: str, camera: str, out: Path, *, segment_s: float = 300.0, on_segment: Callable[[Path], None] =
        lambda path: None, backoff_s: tuple[float, float] = (1.0, 30.0), timeout_s: float = 10.0,
    ):
        self.url = url
        self.folder = Path(out) / camera
        self.segment_s = segment_s
        self.on_segment = on_segment
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.connections = 0  # how many times the stream was opened
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Record, reopening the stream after each drop: waits double after each failed try, up to the most."""
        import av

        self.folder.mkdir(parents=True, exist_ok=True)
        wait = self.backoff_s[0]
        while not self._stopping.is_set():
            try:
                if self._record_once():
                    wait = self.backoff_s[0]  # it delivered: the next drop starts the back-off afresh
            except (av.FFmpegError, OSError) as error:
                log.warning("stream %s: %s", self.url, error)
            if self._stopping.wait(wait):
                break
            log.info("stream %s: reconnecting after %.1f s", self.url, wait)
            wait = min(wait * 2, self.backoff_s[1])

    def _record_once(self) -> bool:
        """One connection, until the stream ends or drops or stop(); True when it delivered a segment's start."""
        import av

        container = av.open(self.url, timeout=(self.timeout_s, self.timeout_s))
        self.connections += 1
        segment: Segment | None = None
        try:
            video = container.streams.video[0]
            audio = [s for s in container.streams.audio if s.codec_context.name in _COPIED_AUDIO][:1]
            for packet in container.demux([video, *audio]):
                if self._stopping.is_set():
                    break
                if packet.pts is None:
                    continue
                at = float(packet.pts * packet.time_base)
                if packet.stream is video and packet.is_keyframe and (
                    segment is None or at - segment.first_pts_s >= self.segment_s
                ):
                    if segment is not None:
                        self.on_segment(segment.close())
                    segment = self._open_segment([video, *audio], at)
                if segment is not None:
                    segment.write(packet)
        except av.FFmpegError as error:  # the stream broke mid-way: what arrived so far is kept
            log.warning("stream %s dropped: %s", self.url, error)
        finally:
            if segment is not None:
                self.on_segment(segment.close())
            container.close()
        return segment is not None

    def _open_segment(self, inputs: list, first_pts_s: float) -> Segment:
        started = datetime.now(timezone.utc)
        path = self.folder / f"{started:{SEGMENT_NAME}}.mp4"
        if path.exists() or path.with_name(path.name + ".part").exists():  # two starts in one second
            path = self.folder / f"{started:{SEGMENT_NAME}}-{started.microsecond // 1000:03d}.mp4"
        return Segment(path, started, inputs, first_pts_s)


class SegmentIndexer:
    """Ingests closed segments in a thread of its own, so that indexing never holds up reading the stream."""

    def __init__(self, archive, out: Path, ingest_options: dict, on_event: Callable = lambda event: None):
        self.archive = archive
        self.out = Path(out)
        # segment names are UTC; the camera is the folder under `out`, as record writes it
        self.ingest_options = {**ingest_options, "tz": "UTC"}
        self.on_event = on_event
        self._closed: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="segment-indexer", daemon=True)

    def __enter__(self) -> SegmentIndexer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed.put(None)
        self._thread.join()

    def add(self, segment: Path) -> None:
        self._closed.put(segment)

    def _run(self) -> None:
        from .errors import ArchiveError

        while (segment := self._closed.get()) is not None:
            try:
                self.archive.ingest([segment], roots=[self.out], **self.ingest_options, on_event=self.on_event)
            except ArchiveError as error:  # busy or a failed write: `watch` or the next ingest picks it up
                log.warning("segment %s not indexed: %s", segment, error)
