"""The int8 check's arithmetic (vidsearch.precision), on vectors made here: what it measures, and that each bound
can refuse int8 on its own."""

from __future__ import annotations

import types

import numpy as np
import pytest

from vidsearch import precision
from vidsearch.config import default_settings
from vidsearch.precision import Int8Check, agrees, check_int8, compare
from vidsearch.records import ModelIdentity


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def vocabulary(rng, dim: int = 32) -> tuple[np.ndarray, list[np.ndarray]]:
    prompts = unit_rows(rng.normal(size=(12, dim)))
    return prompts, [prompts[:4], prompts[4:7], prompts[7:]]


def test_identical_vectors_agree_fully_and_noise_lowers_every_figure():
    rng = np.random.default_rng(0)
    prompts, groups = vocabulary(rng)
    exact = unit_rows(rng.normal(size=(20, 32)))
    same = compare(exact, exact.copy(), prompts, groups)
    assert same == {"min_cosine": same["min_cosine"], "mean_cosine": same["mean_cosine"],
                    "label_agreement": 1.0, "rank_correlation": same["rank_correlation"]}
    assert np.isclose(same["min_cosine"], 1) and np.isclose(same["rank_correlation"], 1)
    noisy = compare(exact, unit_rows(exact + rng.normal(scale=0.5, size=exact.shape)), prompts, groups)
    # noise of 0.5 a component on 32-dim unit vectors has a norm near 2.8: cosines near 1 / 3, far under 0.99
    assert noisy["min_cosine"] < noisy["mean_cosine"] < 0.99
    assert noisy["label_agreement"] < 1 and noisy["rank_correlation"] < 0.95


def test_each_bound_refuses_on_its_own():
    limits = {"min_cosine": 0.99, "label_agreement": 0.95, "rank_correlation": 0.95, "speedup": 1.25}
    good = {"min_cosine": 0.995, "mean_cosine": 0.998, "label_agreement": 0.97, "rank_correlation": 0.99,
            "speedup": 2.1}
    assert agrees(good, limits)
    for name in limits:
        assert not agrees({**good, name: limits[name] - 0.001}, limits), name


def test_a_recorded_check_applies_only_to_its_own_model_and_an_unreadable_row_is_checked_again():
    check = Int8Check(
        model="ViT-B-32", weights="sha256:ab", images=40, crops=8, min_cosine=0.995, mean_cosine=0.998,
        label_agreement=0.97, rank_correlation=0.99, fp32_images_per_s=10.9, int8_images_per_s=22.9, speedup=2.1,
        bounds={"min_cosine": 0.99}, precision="int8",
    )
    import json

    again = Int8Check.from_json(json.dumps(check.to_json()))
    assert again == check
    assert again.applies_to(ModelIdentity("ViT-B-32", "sha256:ab", 512))
    assert not again.applies_to(ModelIdentity("ViT-B-32", "sha256:cd", 512))
    assert Int8Check.from_json('{"model": "ViT-B-32"}') is None and Int8Check.from_json(None) is None


class _Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _SlowSometimes:
    """Two towers that give the same vectors; each pass takes the next of its scripted durations on the clock."""

    def __init__(self, clock: _Clock, fp32_seconds: list[float], int8_seconds: list[float]):
        self.identity = ModelIdentity("ViT-B-32", "sha256:ab", 4)
        self.clock, self.fp32_seconds, self.int8_seconds = clock, fp32_seconds, int8_seconds

    def int8_visual(self):
        return None

    def _pass(self, images, durations: list[float]) -> np.ndarray:
        self.clock.now += durations.pop(0)
        return np.tile(np.eye(4)[:1], (len(images), 1))

    def embed_images(self, images):
        return self._pass(images, self.fp32_seconds)

    def embed_images_int8(self, images):
        return self._pass(images, self.int8_seconds)


def test_each_towers_rate_is_its_best_of_three_passes(monkeypatch, tmp_path):
    """One slow pass (the first, setting up kernels; or the machine busy) does not decide the precision."""
    clock = _Clock()
    monkeypatch.setattr(precision, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    # the whole sample of 5 images, then 4 of them twice; fp32 slow in its first pass, int8 in its second:
    # taken one pass each, int8 would look 4x as fast
    embedder = _SlowSometimes(clock, [2.0, 0.8, 1.0], [0.5, 3.0, 0.8])
    reader = types.SimpleNamespace(prompt_vectors=np.eye(4), label_vectors=[np.eye(4)[:2], np.eye(4)[2:]])
    frames = [np.zeros((8, 8, 3), np.uint8)] * 3
    check = check_int8(embedder, reader, frames, frames[:2], default_settings(tmp_path).clip)
    assert embedder.fp32_seconds == embedder.int8_seconds == []  # three passes each
    assert check.fp32_images_per_s == pytest.approx(4 / 0.8) and check.int8_images_per_s == pytest.approx(5 / 0.5)
    assert check.speedup == pytest.approx(2.0) and check.precision == "int8"
