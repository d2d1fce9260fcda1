"""`record` against stream servers of its own on loopback: an HTTP MPEG-TS stream served at real-time pace that
drops mid-segment (reconnect, nothing lost or corrupt, segments indexed as they close) and a UDP MPEG-TS stream
sent by PyAV. Every server here stops by itself."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePath
from zoneinfo import ZoneInfo

import av
import pytest

from shared_files import VIDEOS
from vidsearch.clock import time_from_name
from vidsearch.record import Recorder, SegmentIndexer

SOURCE = VIDEOS / "unit" / "intel_asl_book.mkv"
RATE, SECONDS = 25, 8  # the stream: 8 s at 25 fps, a keyframe every second


@pytest.fixture(scope="module")
def transport_stream(tmp_path_factory) -> Path:
    """An MPEG-TS file with a keyframe each second, made from a shared clip (its own has one keyframe)."""
    path = tmp_path_factory.mktemp("stream") / "stream.ts"
    with av.open(str(SOURCE)) as source:
        pictures = [frame.to_ndarray(format="rgb24", width=320, height=240) for frame in source.decode(video=0)]
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=RATE, options={"preset": "ultrafast", "g": str(RATE), "keyint_min": str(RATE)})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(RATE * SECONDS):
            frame = av.VideoFrame.from_ndarray(pictures[i % len(pictures)], format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


class PacedStreamServer:
    """Serves a TS file over HTTP at real-time pace: the first connection is cut after `drop_after_s`, the next ones
    get the whole file; after `connections` the server answers 404, and it shuts down on exit."""

    def __init__(self, data: bytes, drop_after_s: float, connections: int = 2):
        self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.served += 1
                if server.served > connections:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                limit = drop_after_s if server.served == 1 else SECONDS
                per_s, started = len(data) / SECONDS, time.monotonic()
                sent = 0
                while sent < min(len(data), int(limit * per_s)):
                    chunk = data[sent : min(sent + 4096, int(limit * per_s))]
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    time.sleep(max(0.0, sent / per_s - (time.monotonic() - started)))
                self.connection.shutdown(socket.SHUT_RDWR)  # a drop, as a camera that reboots

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/live.ts"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> PacedStreamServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.shutdown()
        self.http.server_close()


def segments_of(folder: Path) -> list[Path]:
    assert not list(folder.glob("*.part")), "a segment left unfinished"
    return sorted(folder.glob("*.mp4"))


def decoded_seconds(path: Path) -> float:
    """Decodes every frame (a corrupt file raises) and returns the span of their timestamps plus one frame."""
    with av.open(str(path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert times, f"{path} holds no frame"
    return times[-1] - times[0] + 1 / RATE


def run_recorder(recorder: Recorder, until, timeout_s: float = 60.0) -> None:
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not until() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        recorder.stop()
        thread.join(timeout=30)
    assert not thread.is_alive() and until()


def test_http_stream_dropped_mid_segment_reconnects_and_every_segment_is_whole_and_indexed(
    tmp_path, transport_stream, options
):
    from vidsearch import Archive

    out = tmp_path / "recordings"
    began = datetime.now(timezone.utc)
    closed: list[Path] = []
    with PacedStreamServer(transport_stream.read_bytes(), drop_after_s=3.5) as server, \
            Archive.open(tmp_path / "archive", **options) as archive, \
            SegmentIndexer(archive, out, {"persons": False}) as indexer:
        def on_segment(path: Path) -> None:
            closed.append(path)
            indexer.add(path)

        recorder = Recorder(server.url, "gate", out, segment_s=2, on_segment=on_segment, backoff_s=(0.2, 1.0))
        run_recorder(recorder, until=lambda: server.served >= 3)  # dropped, reconnected, whole, then refused
    assert recorder.connections == 2
    segments = segments_of(out / "gate")
    # a whole 2 s segment and the rest before the drop; the 8 s after it in four
    assert segments == sorted(closed) and len(segments) >= 5
    lengths = [decoded_seconds(path) for path in segments]
    # 3.5 s before the drop (cut at a keyframe, so at least 3) and the whole 8 s after it: nothing lost
    assert sum(lengths) >= 3 + SECONDS - 0.2
    assert all(length <= 2 + 1 + 0.1 for length in lengths)  # cut at the first keyframe after 2 s
    for path in segments:  # named by their UTC start, which the clock rules read
        start = time_from_name(PurePath(path), ZoneInfo("UTC"))
        assert began - timedelta(seconds=1) <= start <= datetime.now(timezone.utc)
    with Archive.open(tmp_path / "archive", **options) as reopened:
        indexed = {v.path: v for v in reopened.catalog.videos(status="indexed")}
    assert sorted(indexed) == segments
    assert {v.origin.camera for v in indexed.values()} == {"gate"}
    assert all(v.origin.time_source == "name" and v.origin.zone == "UTC" for v in indexed.values())


def send_udp(source: Path, url: str) -> None:
    """Sends a TS file's packets to a UDP address at real-time pace, through PyAV's muxer."""
    with av.open(str(source)) as given, av.open(url, "w", format="mpegts") as out:
        video = given.streams.video[0]
        stream = out.add_stream_from_template(video)
        started = time.monotonic()
        for packet in given.demux(video):
            if packet.dts is None:
                continue
            time.sleep(max(0.0, float(packet.pts * packet.time_base) - 1.4 - (time.monotonic() - started)))
            packet.stream = stream
            out.mux(packet)


def test_udp_stream_is_recorded_into_whole_segments(tmp_path, transport_stream):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "recordings"
    recorder = Recorder(f"udp://127.0.0.1:{port}", "yard", out, segment_s=3, backoff_s=(0.2, 0.5), timeout_s=2)
    sender = threading.Thread(
        target=lambda: (time.sleep(1.0), send_udp(transport_stream, f"udp://127.0.0.1:{port}?pkt_size=1316")),
        daemon=True,
    )
    sender.start()
    folder = out / "yard"
    # the stream ends without a word: the read times out, and the last segment closes
    run_recorder(
        recorder, until=lambda: not sender.is_alive() and not list(folder.glob("*.part")) and list(folder.glob("*.mp4")),
        timeout_s=40,
    )
    lengths = [decoded_seconds(path) for path in segments_of(folder)]
    assert len(lengths) >= 2 and sum(lengths) >= SECONDS - 2  # what arrives before the first keyframe is skipped
