"""Footage with sound for the speech tests: phrases synthesized by espeak-ng, placed at known times in a copy of a
real clip (its video stream copied, an AAC track added with PyAV); noise-only, silent and undecodable sound.

The phrases of a soundtrack are said word by word, so that where each word's voice begins and ends is known from
the samples themselves, not from the recognizer under test."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from fractions import Fraction
import wave
from pathlib import Path

import numpy as np

from shared_files import VIDEOS

RATE = 22_050  # espeak-ng's own rate
# silence between words said one by one: no word's sound runs into the next, and tiny.en still hears a phrase
# ("Parking lot behind the station"); at 0.1 s it heard "the" said alone as "third"
PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class Word:
    """A word of a soundtrack and its voice: from its first sample that is not silence to past its last, seconds."""

    text: str
    start: float
    end: float


def spoken(text: str, folder: Path) -> np.ndarray:
    """`text` as espeak-ng says it (American English, 150 words a minute), float32 samples at RATE."""
    path = folder / "phrase.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    with wave.open(str(path)) as sound:
        samples = np.frombuffer(sound.readframes(sound.getnframes()), np.int16)
    return samples.astype(np.float32) / 32768


def said(text: str, folder: Path) -> tuple[np.ndarray, list[Word]]:
    """`text` said word by word: each word spoken alone and cut to its sound (espeak-ng writes exact zeros around
    it), the words PAUSE apart; and each word's voice in seconds from the first sample."""
    pieces, words, at = [], [], 0
    for word in text.split():
        voice = spoken(word, folder)
        sounding = np.flatnonzero(voice)
        voice = voice[sounding[0]:sounding[-1] + 1]
        words.append(Word(word, at / RATE, (at + len(voice)) / RATE))
        pieces += [voice, np.zeros(round(PAUSE * RATE), np.float32)]
        at += len(voice) + round(PAUSE * RATE)
    return np.concatenate(pieces[:-1]), words


def soundtrack(
    seconds: float, phrases: dict[float, str], folder: Path, noise: float = 0.0, seed: int = 0, whole: bool = False
) -> tuple[np.ndarray, list[Word]]:
    """`seconds` of sound with each phrase, said word by word, starting at its time, over white noise of RMS
    `noise`; and each word's voice in the track's time. `whole`: each phrase as espeak-ng says it in one breath
    (how scripts/bench_speech.py measures the recognizer), its words' times then unknown and left out."""
    track = np.random.default_rng(seed).normal(0, noise, int(seconds * RATE)).astype(np.float32)
    words = []
    for start, text in phrases.items():
        voice, timed = (spoken(text, folder), []) if whole else said(text, folder)
        at = round(start * RATE)
        track[at:at + len(voice)] += voice[: len(track) - at]
        words += [Word(w.text, at / RATE + w.start, at / RATE + w.end) for w in timed]
    return np.clip(track, -1, 1), words


def with_sound(source: str, target: Path, track: np.ndarray | None, broken: bool = False) -> Path:
    """A copy of the shared clip `source` with `track` as its AAC audio; `broken`: an audio stream whose packets
    are not AAC at all (the pictures stay whole)."""
    import av

    with av.open(str(VIDEOS / source)) as given, av.open(str(target), "w") as made:
        video_in = given.streams.video[0]
        video_out = made.add_stream_from_template(video_in)
        audio = made.add_stream("aac", rate=RATE, layout="mono")
        if broken:
            junk = np.random.default_rng(1)
            for i in range(200):
                packet = av.Packet(junk.integers(0, 256, 300, dtype=np.uint8).tobytes())
                packet.stream, packet.pts, packet.dts, packet.time_base = audio, i * 1024, i * 1024, Fraction(1, RATE)
                made.mux(packet)
        else:
            for start in range(0, len(track), 1024):
                frame = av.AudioFrame.from_ndarray(track[None, start:start + 1024], format="flt", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                made.mux(audio.encode(frame))
            made.mux(audio.encode(None))
        for packet in given.demux(video_in):
            if packet.dts is None:
                continue
            packet.stream = video_out
            made.mux(packet)
    return target
