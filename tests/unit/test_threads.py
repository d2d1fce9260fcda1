"""How the cores are shared out (vidsearch.threads): every model pool takes the cores granted, the speech recognizer
beside them half, and idle threads spin only where cores are plenty."""

from __future__ import annotations

import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from vidsearch import threads
from vidsearch.config import default_settings
from vidsearch.speech.transcribe import Transcriber


@pytest.fixture(autouse=True)
def _granted_back():
    yield
    threads.use_cores(None)


@pytest.mark.parametrize("count, spin", [(1, False), (2, False), (4, False), (16, True), (64, True)])
def test_pools_take_the_granted_cores_and_spin_only_on_many(count, spin):
    threads.use_cores(count)
    assert threads.model_threads() == count
    assert threads.idle_threads_spin() is spin


def test_without_a_grant_the_affinity_counts():
    import os

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads.cores() == expected


class _RecordingWhisper:
    """faster-whisper's WhisperModel, keeping the options it is made with instead of loading a model."""

    def __init__(self, model, **options):
        self.options = options


@pytest.fixture
def speech_config(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", types.SimpleNamespace(WhisperModel=_RecordingWhisper))
    return default_settings(Path("archive")).speech


@pytest.mark.parametrize("count, expected", [(1, 1), (3, 1), (8, 4), (16, 8)])
def test_the_speech_recognizer_takes_half_the_granted_cores(speech_config, count, expected):
    threads.use_cores(count)
    transcriber = Transcriber(speech_config, "cpu")
    assert transcriber.threads == transcriber.model.options["cpu_threads"] == threads.speech_threads() == expected


def test_a_speech_thread_count_in_the_settings_stays(speech_config):
    threads.use_cores(16)
    transcriber = Transcriber(replace(speech_config, cpu_threads=3), "cpu")
    assert transcriber.threads == transcriber.model.options["cpu_threads"] == 3
