"""Speech to text with timed words: Whisper through faster-whisper (CTranslate2), only where its voice-activity
detector (Silero VAD) hears speech, with a guard against the text Whisper writes into silence and noise."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..config import SpeechConfig
from ..errors import ConfigError
from ..threads import speech_threads
from .records import SpeechSegment, SpokenWord

log = logging.getLogger("vidsearch")


class SpeechUnavailable(ConfigError):
    """No speech recognizer here: the `speech` extra is not installed, or the model cannot be loaded (a name that
    cannot be downloaded offline, a folder without a model). Videos are indexed for their pictures."""


def is_heard(segment: SpeechSegment, config: SpeechConfig) -> bool:
    """Whether a segment is speech rather than the recognizer's guess at noise ("Thank you." over wind)."""
    if not segment.text.strip() or not segment.words:
        return False
    if segment.avg_logprob < config.min_avg_logprob:
        return False
    return not (segment.no_speech_prob > config.no_speech_threshold and segment.avg_logprob < config.guard_log_prob)


class Transcriber:
    """One Whisper model, loaded once and used for every video of an ingest."""

    def __init__(self, config: SpeechConfig, device: str):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise SpeechUnavailable(
                "faster-whisper is not installed (pip install 'vidsearch[speech]'; or ingest with --no-speech)"
            ) from None

        self.config = config
        cuda = device == "cuda"
        compute_type = config.compute_type if config.compute_type != "auto" else "float16" if cuda else "int8"
        self.threads = threads = config.cpu_threads or speech_threads()
        model = str(Path(config.model)) if Path(config.model).is_dir() else config.model
        log.info("speech model %s on %s (%s, %d CPU threads)", model, device, compute_type, threads)
        try:
            self.model = WhisperModel(
                model, device="cuda" if cuda else "cpu", compute_type=compute_type, cpu_threads=threads
            )
        # a name that cannot be downloaded, a folder without a model, a compute type the device lacks: each library
        # below raises its own kind
        except Exception as error:  # noqa: BLE001
            raise SpeechUnavailable(f"cannot load the speech model {config.model!r}: {error}") from None

    def transcribe(self, audio: np.ndarray, stop: threading.Event | None = None) -> list[SpeechSegment]:
        """The segments heard in 16 kHz mono samples, with times in seconds from the samples' start."""
        config = self.config
        segments, info = self.model.transcribe(
            audio, language=config.language, beam_size=config.beam_size, word_timestamps=True,
            vad_filter=True, vad_parameters={"min_silence_duration_ms": config.vad_min_silence_ms},
            # each stretch on its own: a hallucination does not seed the next one
            condition_on_previous_text=False,
            no_speech_threshold=config.no_speech_threshold, log_prob_threshold=config.log_prob_threshold,
        )
        heard = []
        for segment in segments:  # decoded lazily: stopping here stops the work
            found = SpeechSegment(
                start=float(segment.start), end=float(segment.end), text=segment.text.strip(), language=info.language,
                avg_logprob=float(segment.avg_logprob), no_speech_prob=float(segment.no_speech_prob),
                words=tuple(
                    SpokenWord(float(w.start), float(w.end), w.word.strip(), float(w.probability))
                    for w in segment.words or () if w.word.strip()
                ),
            )
            if is_heard(found, config):
                heard.append(found)
            if stop is not None and stop.is_set():
                break
        return heard
