"""The re-rank store's float16 widening, bit for bit, against numpy's own cast."""

from __future__ import annotations

import numpy as np

from vidsearch.rerank import widen_float16


def test_every_finite_float16_widens_to_its_value():
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)]  # stored vectors are finite: infinities and NaNs are never widened
    assert np.array_equal(widen_float16(finite).view(np.uint32), finite.astype(np.float32).view(np.uint32))


def test_widening_into_a_given_array_fills_it():
    halves = np.random.default_rng(0).normal(0, 0.05, (7, 64)).astype(np.float16)
    out = np.empty((7, 64), np.int32)
    widened = widen_float16(halves, out)
    assert np.shares_memory(widened, out) and np.array_equal(widened, halves.astype(np.float32))
