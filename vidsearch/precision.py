"""Whether an archive's images may be embedded in dynamic int8: decided once per archive, on its own frames and
crops, by comparing the int8 image tower with the fp32 one (pure numpy here; the towers are vidsearch.embed's).

int8 is adopted only where every sampled image keeps its vector (cosine to fp32 at least `int8_min_cosine`) and
the attribute vocabulary reads the sample the same way: the most likely label of each attribute group stays the
same for at least `int8_min_label_agreement` of (image, group) pairs, and the order of all the vocabulary's prompts
by similarity keeps a mean Spearman correlation of at least `int8_min_rank_correlation` per image; and where it is
worth it: int8 embeds the sample at least `int8_min_speedup` times as fast as fp32 (CPUs with VNNI about 2x; without,
about 1x, where int8 would cost agreement for nothing).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from .config import ClipConfig
from .records import ModelIdentity

PRECISION_KEY = "clip_precision"  # the catalog's meta row holding the decision and its figures
# frames and crops the check embeds, of each at most
SAMPLE_PER_KIND = 8
# each tower's rate is its best of this many passes, the two taking turns: the whole sample, then its first few
# images again; one pass of a few images moves by 2x with what else the machine does (the decoder reading ahead)
TIMING_ROUNDS = 3
TIMED_AGAIN = 4


@dataclass(frozen=True, slots=True)
class Int8Check:
    """The figures of one comparison of int8 with fp32 image vectors, and what they decided."""

    model: str
    weights: str
    images: int  # frames and crops in the sample
    crops: int
    min_cosine: float
    mean_cosine: float
    label_agreement: float  # share of (image, attribute group) pairs whose most likely label is unchanged
    rank_correlation: float  # mean over images of Spearman's rho between the prompts' orders
    fp32_images_per_s: float
    int8_images_per_s: float
    speedup: float  # int8 images per second over fp32's
    bounds: dict[str, float]
    precision: str  # "int8" or "fp32": what the archive's images are embedded in

    def applies_to(self, identity: ModelIdentity) -> bool:
        return (self.model, self.weights) == (identity.model, identity.weights)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: str | None) -> Int8Check | None:
        try:
            return cls(**json.loads(raw)) if raw else None
        except (ValueError, TypeError):  # a row of another version: checked again
            return None


def bounds(config: ClipConfig) -> dict[str, float]:
    return {
        "min_cosine": config.int8_min_cosine,
        "label_agreement": config.int8_min_label_agreement,
        "rank_correlation": config.int8_min_rank_correlation,
        "speedup": config.int8_min_speedup,
    }


def compare(
    exact: np.ndarray, reduced: np.ndarray, prompts: np.ndarray, groups: list[np.ndarray]
) -> dict[str, float]:
    """Agreement figures of `reduced` image vectors with `exact` ones (rows normalized, one per image): cosines,
    the attribute groups' top labels (`groups`: per group, labels x dim) and the order of `prompts` (n x dim)."""
    cosine = np.sum(exact * reduced, axis=1)
    same_label = [
        np.argmax(exact @ labels.T, axis=1) == np.argmax(reduced @ labels.T, axis=1) for labels in groups
    ]
    return {
        "min_cosine": float(cosine.min()),
        "mean_cosine": float(cosine.mean()),
        "label_agreement": float(np.mean(same_label)),
        "rank_correlation": float(np.mean([_spearman(a, b) for a, b in zip(exact @ prompts.T, reduced @ prompts.T)])),
    }


def agrees(figures: dict[str, float], limits: dict[str, float]) -> bool:
    return all(figures[name] >= bound for name, bound in limits.items())


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def _rate(embed, images: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Vectors of `images`, and images per second."""
    started = time.perf_counter()
    vectors = embed(images)
    return vectors, len(images) / max(time.perf_counter() - started, 1e-9)


def check_int8(embedder, reader, frames: list[np.ndarray], crops: list[np.ndarray], config: ClipConfig) -> Int8Check:
    """Embed `frames` and `crops` (RGB arrays) through `embedder`'s fp32 and int8 image towers, and decide by
    `config`'s bounds; `reader` (attributes.AttributeReader) holds the vocabulary's prompt and label vectors."""
    frames, crops = frames[:SAMPLE_PER_KIND], crops[:SAMPLE_PER_KIND]
    images = [*frames, *crops]
    embedder.int8_visual()  # made before the clocks start: a one-time cost, not a rate
    exact, fp32_rate = _rate(embedder.embed_images, images)
    reduced, int8_rate = _rate(embedder.embed_images_int8, images)
    for _ in range(TIMING_ROUNDS - 1):  # a tower's first pass also sets up its kernels: a later one is faster
        fp32_rate = max(fp32_rate, _rate(embedder.embed_images, images[:TIMED_AGAIN])[1])
        int8_rate = max(int8_rate, _rate(embedder.embed_images_int8, images[:TIMED_AGAIN])[1])
    figures = {**compare(exact, reduced, reader.prompt_vectors, reader.label_vectors), "speedup": int8_rate / fp32_rate}
    limits = bounds(config)
    return Int8Check(
        model=embedder.identity.model, weights=embedder.identity.weights, images=len(images), crops=len(crops),
        **figures, fp32_images_per_s=fp32_rate, int8_images_per_s=int8_rate,
        bounds=limits, precision="int8" if agrees(figures, limits) else "fp32",
    )
