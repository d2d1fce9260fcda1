"""Which library opens a file: PyAV, decord, or decord with PyAV where decord cannot read it ("auto")."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol

from ..errors import ConfigError, DecodeError
from ..records import Frame, VideoInfo
from .decord_reader import NOT_INSTALLED, DecordDecoder, decord_installed
from .pyav_reader import PyAVDecoder

log = logging.getLogger("vidsearch")

Reader = Literal["auto", "decord", "pyav"]
Sampling = Literal["time", "keyframes"]


class Decoder(Protocol):
    """What open_video returns."""

    reader: str  # the library that decodes the file: "decord" or "pyav"
    info: VideoInfo

    def frames(self, fps: float, batch_size: int = 16) -> Iterator[list[Frame]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Decoder: ...

    def __exit__(self, *exc_info: object) -> None: ...


def open_video(path: Path, *, reader: Reader = "pyav", sampling: Sampling = "time") -> Decoder:
    """Open `path` to sample its frames; `decoder.reader` says which library decodes it.

    reader="auto" takes decord, and PyAV where decord cannot read the file (see AutoDecoder) or is not installed.
    sampling="keyframes" decodes keyframes only, at most one per 1/fps; only PyAV can.
    Raises DecodeError for a file that cannot be read, ConfigError for an unknown reader or sampling.
    """
    check_options(reader, sampling)
    if sampling == "keyframes":
        return PyAVDecoder(path, keyframes=True)
    if reader == "pyav":
        return PyAVDecoder(path)
    if reader == "decord":
        return DecordDecoder(path)
    if not decord_installed():
        return PyAVDecoder(path)
    return AutoDecoder(path)


def check_options(reader: str, sampling: str) -> None:
    """Raise ConfigError unless open_video takes this reader and sampling."""
    if sampling not in ("time", "keyframes"):
        raise ConfigError(f"sampling must be 'time' or 'keyframes', got {sampling!r}")
    if reader not in ("auto", "decord", "pyav"):
        raise ConfigError(f"reader must be 'auto', 'decord' or 'pyav', got {reader!r}")
    if sampling == "keyframes" and reader == "decord":
        raise ConfigError("keyframe sampling needs the pyav reader")
    if reader == "decord" and not decord_installed():
        raise ConfigError(NOT_INSTALLED)


class AutoDecoder:
    """decord, or PyAV where decord cannot open the file, has no usable timestamps, or breaks before a batch.

    decord's failure on Theora is a race between its threads: mostly at open, now and then in the first
    frames() call, before any batch; both go to PyAV. Once a batch is out, a failure raises DecodeError,
    since the caller holds frames of a pass that cannot be finished as it began. reader and info can change
    in the first frames() call, so read them after it.
    """

    def __init__(self, path: Path):
        self.path = path
        self._decoder: DecordDecoder | PyAVDecoder
        try:
            self._decoder = DecordDecoder(path)
        except DecodeError as refused:
            log.debug("%s: decord cannot read it (%s); trying PyAV", path, refused.reason)
            self._decoder = PyAVDecoder(path)
            return
        if self._decoder.info.timeline == "frame-index":
            try:
                fallback = PyAVDecoder(path)
            except DecodeError:
                return
            if fallback.info.timeline == "pts":
                log.debug("%s: decord has no usable timestamps, PyAV reads the pts", path)
                self._decoder.close()
                self._decoder = fallback

    @property
    def reader(self) -> str:
        return self._decoder.reader

    @property
    def info(self) -> VideoInfo:
        return self._decoder.info

    def frames(self, fps: float, batch_size: int = 16) -> Iterator[list[Frame]]:
        """As DecordDecoder.frames or PyAVDecoder.frames, whichever reads the file."""
        yielded = False
        try:
            for batch in self._decoder.frames(fps, batch_size):
                yielded = True
                yield batch
            return
        except DecodeError as broken:
            if yielded or self._decoder.reader == "pyav":
                raise
            log.debug("%s: decord broke before its first batch (%s); trying PyAV", self.path, broken.reason)
        self._decoder.close()
        self._decoder = PyAVDecoder(self.path)
        yield from self._decoder.frames(fps, batch_size)

    def close(self) -> None:
        self._decoder.close()

    def __enter__(self) -> AutoDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
