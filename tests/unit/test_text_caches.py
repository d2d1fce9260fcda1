"""What the query path caches, without a model: the weights file's hash, taken again when the file changes, the
store of text vectors, bounded and forgiving of an unusable file, and the attribute vocabulary's vectors."""

from __future__ import annotations

import os
import time
import zlib

import numpy as np

from vidsearch.attributes import AttributeReader, Vocabulary, load_vocabulary
from vidsearch.identity import weights_sha256
from vidsearch.records import ModelIdentity
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


class CountingEmbedder:
    """Texts to vectors by hashing, counting the calls: what AttributeReader asks of CLIP."""

    identity = ModelIdentity("tiny", "sha256:00", 8)
    text_precision = "float32"
    logit_scale = 100.0

    def __init__(self):
        self.calls: list[int] = []

    def embed_texts(self, texts):
        self.calls.append(len(texts))
        rows = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_the_vocabularys_vectors_are_computed_once_in_one_batch_and_kept_per_model_and_vocabulary(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VIDSEARCH_CACHE", str(tmp_path))
    vocabulary = load_vocabulary()
    prompts = sum(len(label.prompts) for group in vocabulary.groups for label in group.labels)
    embedder = CountingEmbedder()
    first = AttributeReader(vocabulary, embedder)
    assert embedder.calls == [prompts]
    again = AttributeReader(vocabulary, embedder)
    assert embedder.calls == [prompts]  # read from the cache
    np.testing.assert_array_equal(again.prompt_vectors, first.prompt_vectors)
    for ours, theirs in zip(again.label_vectors, first.label_vectors):
        np.testing.assert_array_equal(ours, theirs)

    embedder.text_precision = "bfloat16"
    AttributeReader(vocabulary, embedder)  # the same texts in another precision: computed
    smaller = Vocabulary(vocabulary.groups[:1])
    AttributeReader(smaller, embedder)  # another vocabulary: computed
    assert embedder.calls[1:] == [prompts, sum(len(label.prompts) for label in smaller.groups[0].labels)]

    for path in (tmp_path / "vocabulary-vectors").iterdir():
        path.write_bytes(b"not an array")
    AttributeReader(vocabulary, embedder)  # an unreadable file is computed again
    assert len(embedder.calls) == 4
