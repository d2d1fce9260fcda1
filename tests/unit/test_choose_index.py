"""Index choice: a pure function of the number of vectors, their size and the memory budget."""

from __future__ import annotations

import math
import re

import pytest

from vidsearch.errors import ConfigError
from vidsearch.index import DEFAULT_BYTES_PER_VECTOR, FLAT_MAX_VECTORS, choose_index


@pytest.mark.parametrize(
    ("n", "dim", "budget", "kind", "factory", "search"),
    [
        (0, 512, None, "flat", "IDMap2,Flat", (0, 0, 0)),
        (FLAT_MAX_VECTORS, 512, None, "flat", "IDMap2,Flat", (0, 0, 0)),
        (FLAT_MAX_VECTORS + 1, 512, None, "ivf-pq", "IVF1024,PQ64np", (64, 0, 20)),
        (1_000_000, 512, None, "ivf-pq", "IVF4096,PQ64np", (64, 0, 20)),
        (10_000_000, 512, None, "ivf-pq", "IVF16384_HNSW32,PQ64np", (256, 512, 80)),
        (10_000_000, 512, 3 * 2**30, "ivf-pq", "IVF16384_HNSW32,PQ64np", (256, 512, 80)),  # 3 GB: PQ64 fits
        (1_000_000, 512, 2**30, "ivf-sq8", "IVF4096,SQ8", (64, 0, 20)),  # a byte per dim fits
        (1_000_000, 512, 40 * 2**20, "ivf-pq", "IVF4096,PQ16np", (64, 0, 20)),  # 40 MB: smaller codes
        (50_000, 512, 10 * 2**20, "ivf-pq", "IVF1024,PQ64np", (64, 0, 20)),  # too small a budget for exact search
        (200_000, 64, None, "ivf-pq", "IVF2048,PQ8np", (64, 0, 20)),
        (1_000_000, 768, None, "ivf-pq", "IVF4096,PQ96np", (64, 0, 20)),
    ],
)
def test_choose_index_picks_by_size_and_budget(n, dim, budget, kind, factory, search):
    plan = choose_index(n, dim, budget)
    assert (plan.kind, plan.factory) == (kind, factory)
    assert (plan.nprobe, plan.quantizer_ef, plan.rerank_factor) == search
    assert plan.reason
    if budget is not None:
        assert plan.bytes_per_vector * n <= budget
    if kind != "flat":
        assert plan.train_size <= n


@pytest.mark.parametrize("dim", [64, 512, 768, 1024])
@pytest.mark.parametrize("n", [20_000, 150_000, 1_000_000, 30_000_000, 200_000_000])
def test_choose_index_grid_stays_within_the_default_footprint(n, dim):
    plan = choose_index(n, dim)
    if n <= FLAT_MAX_VECTORS:
        assert plan.kind == "flat"
        return
    nlist = int(re.match(r"IVF(\d+)", plan.factory)[1])
    # FAISS's guideline of 4 to 16 x sqrt(n) lists, less sqrt(2) for rounding to a power of two; 65536 at most
    assert 2 * math.sqrt(n) <= nlist <= 16 * math.sqrt(n) or nlist == 2**16
    assert plan.bytes_per_vector <= DEFAULT_BYTES_PER_VECTOR
    assert plan.train_size <= n and (plan.quantizer_ef > 0) == ("HNSW" in plan.factory)


def test_choose_index_refuses_what_cannot_fit():
    with pytest.raises(ConfigError, match=r"budget of 10 MB cannot hold 1,000,000 vectors of 512 dims"):
        choose_index(1_000_000, 512, 10 * 2**20)
    with pytest.raises(ConfigError, match="too few to train"):
        choose_index(5_000, 512, 2**20)
    with pytest.raises(ConfigError, match="unknown index kind 'hnsw'"):
        choose_index(1_000_000, 512, kind="hnsw")
    assert choose_index(5_000, 512, kind="flat").kind == "flat"
    assert choose_index(50_000, 512, kind="ivf-sq8").factory == "IVF1024,SQ8"
