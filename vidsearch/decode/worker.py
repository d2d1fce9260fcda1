"""Decode in a child process that streams the sampled frames back, so that a file that hangs its decoder is
given up on, not waited for.

The child is a fresh interpreter (not a fork: the parent holds torch's threads, which a fork copies in an
unusable state). It takes one file at a time: opens it, sends each sampled frame as a small header and its
raw pixels, then the stream facts. A file the decoder refuses comes back as a DecodeError. A child that
sends nothing for `decode_timeout_s`, or whose whole decode runs past its cap, is killed and the file is
reported as timed out; a child that dies (a crash inside a decoder library) costs only its file. The next
file gets a fresh child.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from ..errors import DecodeError, VidsearchError
from ..records import Frame, VideoInfo
from .common import short_reason

log = logging.getLogger("vidsearch")

_POLL_S = 0.2  # how often a wait for the child looks whether the caller has stopped
_START_LIMIT_S = 60.0  # an interpreter that has not imported the decoders by then is not going to
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True, slots=True)
class Decoded:
    """The last item of a file's decode: the stream facts, certain only once every frame is out."""

    info: VideoInfo
    reader: str  # the library that decoded it


@dataclass(frozen=True, slots=True)
class _Request:
    path: Path
    fps: float
    reader: str
    sampling: str


@dataclass(frozen=True, slots=True)
class _Ready:
    pass


@dataclass(frozen=True, slots=True)
class _Opened:
    duration: float


@dataclass(frozen=True, slots=True)
class _FrameHeader:  # followed by the pixels, as one message of raw bytes
    index: int
    t: float
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Log:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class _Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class _Broke:
    """An exception other than DecodeError: a library's surprise at a strange file, or a bug."""

    summary: str
    details: str


class DecodeWorker:
    """The parent's handle on the child; one decode at a time, from one thread.

    The child starts booting at once (an interpreter and PyAV take a good part of a second), so that it is
    ready by the time the models are loaded.
    """

    def __init__(
        self, reader: str, sampling: str, timeout_s: float, cap_s_per_video_s: float, in_process: bool | None = None
    ):
        """`in_process`: decode in this process, without time limits; by default on Windows only."""
        from .readers import check_options

        check_options(reader, sampling)
        self.reader = reader
        self.sampling = sampling
        self.timeout_s = timeout_s
        self.cap_s_per_video_s = cap_s_per_video_s
        self.in_process = sys.platform == "win32" if in_process is None else in_process
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._ready = False
        if self.in_process:
            log.info("decoding in this process: no decode time limit on this platform")
        else:
            self._launch()

    def decode(self, path: Path, fps: float, stop: threading.Event) -> Iterator[Frame | Decoded]:
        """Sampled frames in time order, then Decoded; raises DecodeError for a file that cannot be decoded,
        hangs or kills its decoder. Ends early, without Decoded, once `stop` is set.

        Only the time spent waiting for the child counts against the limits, not the time the caller
        holds on to a frame.
        """
        if self.in_process:
            yield from _decode_here(path, fps, self.reader, self.sampling, stop)
            return
        connection = self._started()
        connection.send(_Request(path, fps, self.reader, self.sampling))
        cap, spent, finished = None, 0.0, False
        try:
            while True:
                message, waited = self._next(path, stop, cap, spent)
                if message is None:
                    return
                spent += waited
                if isinstance(message, _FrameHeader):
                    image = np.empty(message.shape, np.uint8)
                    self._receive_pixels(path, image)
                    yield Frame(message.index, message.t, image)
                elif isinstance(message, _Log):
                    log.log(message.level, message.text)
                elif isinstance(message, _Opened):
                    cap = self.timeout_s + self.cap_s_per_video_s * message.duration
                elif isinstance(message, Decoded):
                    finished = True
                    yield message
                    return
                elif isinstance(message, _Refused):
                    finished = True
                    raise DecodeError(path, message.reason)
                else:
                    finished = True
                    log.debug("%s: the decoder raised\n%s", path, message.details)
                    raise DecodeError(path, f"decoder failed: {message.summary}")
        finally:
            if not finished:  # timed out, stopped or abandoned mid-file: the child's state is unknown
                self._kill()

    def close(self) -> None:
        """Let the child finish: it exits when its connection closes."""
        if self._process is None:
            return
        self._connection.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = self._connection = None

    def __enter__(self) -> DecodeWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _started(self) -> Connection:
        if self._process is None or self._process.poll() is not None:
            self._kill()
            self._launch()
        if not self._ready:
            if not self._connection.poll(_START_LIMIT_S) or not isinstance(self._receive_or_none(), _Ready):
                raise VidsearchError(f"the decoder process did not start ({_describe_exit(self._kill())})")
            self._ready = True
        return self._connection

    def _launch(self) -> None:
        import socket

        ours, theirs = socket.socketpair()
        # the child imports this very copy of vidsearch, however the parent found it
        start = f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from vidsearch.decode.worker import serve; serve()"
        self._process = subprocess.Popen(
            [sys.executable, "-c", start, str(theirs.fileno()), str(os.getpid()), str(log.getEffectiveLevel())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._connection = Connection(ours.detach())
        self._ready = False

    def _next(self, path: Path, stop: threading.Event, cap: float | None, spent: float) -> tuple[object | None, float]:
        """The child's next message and the seconds it took; (None, ...) once `stop` is set."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            if cap is not None and spent + waited >= cap:
                raise DecodeError(path, f"decode timed out after {cap:.0f} s in all (the limit for its length)")
            if waited >= self.timeout_s:
                raise DecodeError(path, f"decode timed out after {self.timeout_s:g} s")
            if stop.is_set():
                return None, waited
            if self._connection.poll(min(_POLL_S, self.timeout_s - waited)):
                message = self._receive_or_none()
                if message is None:
                    raise DecodeError(path, f"the decoder process died ({_describe_exit(self._kill())})")
                return message, time.monotonic() - started

    def _receive_pixels(self, path: Path, image: np.ndarray) -> None:
        try:
            self._connection.recv_bytes_into(image.reshape(-1))
        except (EOFError, OSError):
            raise DecodeError(path, f"the decoder process died ({_describe_exit(self._kill())})") from None

    def _receive_or_none(self) -> object | None:
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            return None

    def _kill(self) -> int | None:
        """Stop the child now; returns how it ended."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.kill()
        code = self._process.wait()
        self._connection.close()
        self._process = self._connection = None
        return code


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no process"
    if code < 0:
        name = signal.Signals(-code).name
        return f"{name}, likely out of memory" if -code == signal.SIGKILL else name
    return f"exit code {code}"


# --- the child ------------------------------------------------------------------------------------------


def serve() -> None:
    """The child's loop: one file per request until the parent closes the connection or goes away."""
    fd, parent, level = (int(arg) for arg in sys.argv[1:4])
    # Ctrl-C reaches the whole process group; the parent decides what happens to this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(fd)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    logger = logging.getLogger("vidsearch")
    logger.setLevel(level)
    logger.addHandler(_Forward(connection))
    logger.propagate = False
    import av  # noqa: F401  loaded before Ready, so a file's time limit is its own decode's

    try:
        connection.send(_Ready())
        while True:
            try:
                request = connection.recv()
            except EOFError:
                return
            _decode(connection, request)
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent is gone


def _decode(connection: Connection, request: _Request) -> None:
    from .readers import open_video

    try:
        with open_video(request.path, reader=request.reader, sampling=request.sampling) as decoder:
            connection.send(_Opened(decoder.info.duration))
            # one frame at a time, so that the child never holds more than one frame's pixels
            for [frame] in decoder.frames(request.fps, batch_size=1):
                connection.send(_FrameHeader(frame.index, frame.t, frame.image.shape))
                connection.send_bytes(np.ascontiguousarray(frame.image).reshape(-1))
            connection.send(Decoded(decoder.info, decoder.reader))
    except DecodeError as error:
        connection.send(_Refused(error.reason))
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as error:  # noqa: BLE001 - reported as this file's failure; the parent logs the traceback
        connection.send(_Broke(_summary(error), traceback.format_exc()))


def _summary(error: Exception) -> str:
    return short_reason(f"{type(error).__name__}: {error}", known_causes=())


def _decode_here(path: Path, fps: float, reader: str, sampling: str, stop: threading.Event) -> Iterator[Frame | Decoded]:
    """What the child sends for one file, decoded in this process instead."""
    from .readers import open_video

    try:
        with open_video(path, reader=reader, sampling=sampling) as decoder:
            for [frame] in decoder.frames(fps, batch_size=1):
                if stop.is_set():
                    return
                yield frame
            decoded = Decoded(decoder.info, decoder.reader)
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - as in the child: this file's failure, not the ingest's
        log.debug("%s: the decoder raised\n%s", path, traceback.format_exc())
        raise DecodeError(path, f"decoder failed: {_summary(error)}") from None
    yield decoded


def _exit_with(parent: int) -> None:
    """A child whose parent died (kill -9) exits, even while a decode blocks its main thread."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


class _Forward(logging.Handler):
    """The decoders' log records, sent to the parent to be logged there."""

    def __init__(self, connection: Connection):
        super().__init__()
        self.connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.connection.send(_Log(record.levelno, record.getMessage()))
        except OSError:
            pass  # the parent is gone; the main loop notices on its next send
