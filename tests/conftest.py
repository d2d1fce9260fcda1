"""Fixtures on real parts: the shared footage, the real YOLO11n, and a tiny random-weight CLIP made here.

Here for tests/integration and tests/e2e alike, so that a run of both (the README's command) makes each session
fixture once. Each imports its libraries when a test asks for it: tests/unit asks for none and loads no model library.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared_files import SMALL_SET, TINY_CLIP_CONFIG, YOLO_WEIGHTS, asr_model_folder, footage_folder

# ultralytics reaches for the network (settings sync, fonts) unless told it is offline.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_config(tmp_path_factory):
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics")))
    os.environ.setdefault("VIDSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    # Whisper tiny.en from a local folder (no hub here): every ingest of footage with sound, in this process and
    # in the command lines the tests run, transcribes with it
    os.environ.setdefault("VIDSEARCH_ASR_MODEL", str(asr_model_folder()))


@pytest.fixture(scope="session")
def tiny_clip_weights(tmp_path_factory) -> Path:
    """Random weights with a fixed seed, saved as a user's local weights file would be.

    Random weights keep identity (the same pixels give the same vector) but carry no text-image meaning.
    """
    import open_clip
    import torch

    open_clip.add_model_config(TINY_CLIP_CONFIG)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_CONFIG.stem)
    path = tmp_path_factory.mktemp("clip") / "tiny-clip-random.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def options(tiny_clip_weights) -> dict:
    """The options a user passes to use local weights, here the tiny CLIP and the real YOLO11n."""
    return {
        "clip_model": str(TINY_CLIP_CONFIG),
        "clip_pretrained": str(tiny_clip_weights),
        "yolo_weights": str(YOLO_WEIGHTS),
        "device": "cpu",
    }


@pytest.fixture(scope="session")
def ingested(tmp_path_factory, options):
    """An archive of a few real clips (one Theora, which only PyAV decodes), a zero-byte file and noise, ingested once."""
    from vidsearch import Archive

    root = footage_folder(tmp_path_factory.mktemp("footage"), *SMALL_SET)
    (root / "empty.mp4").touch()
    (root / "noise.mp4").write_bytes(bytes(range(256)) * 400)
    archive = Archive.open(tmp_path_factory.mktemp("archive"), **options)
    report = archive.ingest([root])
    yield archive, root, report
    archive.close()
