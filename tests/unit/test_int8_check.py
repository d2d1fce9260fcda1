"""The int8 check's arithmetic (vidsearch.precision), on vectors made here: what it measures, and that each bound
can refuse int8 on its own."""

from __future__ import annotations

import numpy as np

from vidsearch.precision import Int8Check, agrees, compare
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
