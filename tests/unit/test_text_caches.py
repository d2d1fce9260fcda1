"""What the query path caches, without a model: the weights file's hash, taken again when the file changes, and
the store of text vectors, bounded and forgiving of an unusable file."""

from __future__ import annotations

import os
import time

import numpy as np

from vidsearch.identity import weights_sha256
from vidsearch.text_encoder import TextVectorStore


def test_a_changed_weights_file_is_hashed_again(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"a" * 1000)
    first = weights_sha256(path)
    before = path.stat()
    time.sleep(0.05)  # past the kernel's coarse clock tick, which stamps the change time
    path.write_bytes(b"b" * 1000)  # same size, and the old modification time put back
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights_sha256(path) != first
    assert weights_sha256(path) == weights_sha256(path)


def test_text_vector_store_forgets_the_oldest_and_survives_an_unusable_file(tmp_path):
    store = TextVectorStore(tmp_path / "vectors.sqlite", limit=3)
    for i in range(5):
        store.put("m", {f"text {i}": np.full(4, i, dtype=np.float32)})
    assert sorted(store.get("m", [f"text {i}" for i in range(5)])) == ["text 2", "text 3", "text 4"]
    assert store.get("another model", ["text 4"]) == {}
    (tmp_path / "folder.sqlite").mkdir()
    unusable = TextVectorStore(tmp_path / "folder.sqlite")
    unusable.put("m", {"x": np.zeros(4, dtype=np.float32)})
    assert unusable.get("m", ["x"]) == {}
