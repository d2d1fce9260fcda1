"""Transcription beside the picture stages: a thread works through the videos' sound while the pipeline decodes and
runs the picture models (CTranslate2 releases the GIL), and each video's result is joined by what was said."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..records import ProcessedVideo
from .audio import AudioError, read_audio
from .records import SpeechSegment
from .transcribe import SpeechUnavailable, Transcriber


@dataclass(frozen=True, slots=True)
class Heard:
    segments: tuple[SpeechSegment, ...] = ()
    problem: str | None = None  # why the sound could not be transcribed
    seconds: float = 0.0


def with_speech(
    results: Iterator[tuple[Path, object]], paths: list[Path], transcriber: Callable[[], Transcriber]
) -> Iterator[tuple[Path, object]]:
    """`results` (the pipeline's, in the order of `paths`) with each processed video's speech added.
    `transcriber` loads the model when the first video with sound needs it."""
    stop = threading.Event()
    executor = ThreadPoolExecutor(1, thread_name_prefix="vidsearch-speech")
    pending = {path: executor.submit(_listen, path, transcriber, stop) for path in paths}
    try:
        for path, result in results:
            heard = pending.pop(path)
            if isinstance(result, ProcessedVideo):
                found: Heard = heard.result()
                result.seconds.transcribe += found.seconds
                result = replace(result, speech=found.segments, audio_problem=found.problem)
            else:
                heard.cancel()
            yield path, result
    finally:
        stop.set()
        for heard in pending.values():
            heard.cancel()
        executor.shutdown(wait=True)
        results.close()


def _listen(path: Path, transcriber: Callable[[], Transcriber], stop: threading.Event) -> Heard:
    if stop.is_set():
        return Heard()
    started = time.perf_counter()
    try:
        audio = read_audio(path)
    except AudioError as error:
        return Heard(problem=f"sound not transcribed: {error}")
    if audio is None:
        return Heard()
    try:
        recognizer = transcriber()
    except SpeechUnavailable as error:
        return Heard(problem=f"sound not transcribed: {error}")
    segments = recognizer.transcribe(audio, stop)
    return Heard(tuple(segments), seconds=time.perf_counter() - started)
