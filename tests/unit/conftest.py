"""Unit tests run pure logic: one that loads a model library fails."""

from __future__ import annotations

import sys

import pytest

MODEL_LIBRARIES = ("torch", "ultralytics", "open_clip")


@pytest.fixture(autouse=True)
def _no_model_library():
    """Fail a test that loads torch, ultralytics or open_clip (seen where none was loaded before it, as when
    tests/unit runs on its own; after the integration tests in one run they are loaded already)."""
    before = set(MODEL_LIBRARIES) & set(sys.modules)
    yield
    loaded = (set(MODEL_LIBRARIES) & set(sys.modules)) - before
    assert not loaded, f"this unit test loaded {', '.join(sorted(loaded))}: a test needing it goes in tests/integration"
