"""How the cores are shared out (vidsearch.threads): every model pool takes the cores granted, and idle threads spin
only where cores are plenty."""

from __future__ import annotations

import pytest

from vidsearch import threads


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
