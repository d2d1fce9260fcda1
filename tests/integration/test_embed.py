"""The CLIP embedder through the user's loading path (config JSON + weights file), on real frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from shared_files import TINY_CLIP_CONFIG, VIDEOS
from vidsearch.config import ClipConfig
from vidsearch.decode import open_video
from vidsearch.embed import ClipEmbedder
from vidsearch.errors import ConfigError


@pytest.fixture(scope="module")
def frames():
    with open_video(VIDEOS / "scenes/opencv_vtest_pets2009.avi") as decoder:
        return [f.image for batch in decoder.frames(0.25, batch_size=32) for f in batch]


def config(weights, **changes) -> ClipConfig:
    return replace(ClipConfig(str(TINY_CLIP_CONFIG), str(weights), batch_size=8, precision="auto"), **changes)


def test_vectors_are_normalized_deterministic_and_batch_independent(tiny_clip_weights, frames):
    # in fp32: int8 quantizes activations with a scale taken over the whole batch, so its vectors depend on their
    # batch mates by design (the int8 check bounds how far it may move a vector from fp32)
    embedder = ClipEmbedder(config(tiny_clip_weights, precision="fp32"), "cpu")
    vectors = embedder.embed_images(frames)
    assert vectors.shape == (len(frames), 64) and vectors.dtype == np.float32
    # unit vectors, to float32 rounding over 64 dims
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([embedder.embed_images([f]) for f in frames[:5]])
    # the same arithmetic whatever the batch, but summed in other orders by other matrix kernels: float32 rounding
    np.testing.assert_allclose(one_by_one, vectors[:5], atol=1e-5)
    texts = embedder.embed_texts(["a man in a red jacket", "a white van"])
    assert texts.shape == (2, 64)
    assert embedder.identity.model == "tiny-clip" and embedder.identity.weights.startswith("sha256:")


def test_bf16_agrees_with_fp32(tiny_clip_weights, frames):
    """bf16 is forced, not left to "auto", which is fp32 on CPUs without AMX and would compare fp32 with itself."""
    import torch

    reduced = ClipEmbedder(config(tiny_clip_weights, precision="bf16"), "cpu")
    exact = ClipEmbedder(config(tiny_clip_weights, precision="fp32"), "cpu")
    assert reduced.dtype == torch.bfloat16 and exact.dtype == torch.float32
    reduced_vectors, exact_vectors = reduced.embed_images(frames), exact.embed_images(frames)
    assert not np.array_equal(reduced_vectors, exact_vectors)  # the two really ran in different precisions
    cosine = np.sum(reduced_vectors * exact_vectors, axis=1)
    # bf16 keeps 8 significant bits (0.4 % a value); 0.999 leaves the vectors 4.5 % apart at most
    assert cosine.min() > 0.999, cosine.min()
    assert reduced.identity == exact.identity  # the same weights: vectors of both may share an archive


def test_auto_precision_is_bf16_only_where_the_cpu_has_amx(tiny_clip_weights):
    import torch

    auto = ClipEmbedder(config(tiny_clip_weights), "cpu")
    assert auto.dtype == (torch.bfloat16 if torch.cpu._is_amx_tile_supported() else torch.float32)


def test_bad_model_options_are_config_errors(tiny_clip_weights, tmp_path):
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        ClipEmbedder(config(tiny_clip_weights, model="no-such-model"), "cpu")
    with pytest.raises(ConfigError, match="CLIP weights file not found"):
        ClipEmbedder(config(tmp_path / "missing.pt"), "cpu")
    with pytest.raises(ConfigError, match="precision"):
        ClipEmbedder(config(tiny_clip_weights, precision="int4"), "cpu")
