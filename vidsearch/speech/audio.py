"""A video's sound as the speech recognizer takes it: its default audio stream, mixed to mono, at 16 kHz, float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


class AudioError(Exception):
    """The file's audio stream could not be decoded (its pictures may be fine)."""


def read_audio(path: Path) -> np.ndarray | None:
    """The samples of the default audio stream; None when the file has no audio stream."""
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise AudioError(f"cannot open: {error}") from None
    with container:
        stream = default_stream(container.streams.audio)
        if stream is None:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except (av.FFmpegError, ValueError) as error:
            raise AudioError(f"the audio stream cannot be decoded: {error}") from None
    if not chunks:
        raise AudioError("the audio stream holds no samples")
    return np.concatenate(chunks).astype(np.float32, copy=False)


def default_stream(streams):
    """The stream a player picks: the one marked default, else the first (a dubbed film, a camera's two mics)."""
    import av

    streams = list(streams)
    marked = [s for s in streams if s.disposition & av.stream.Disposition.default]
    return (marked or streams or [None])[0]
