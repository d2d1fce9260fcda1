"""Embed images and texts into one normalized vector space with an open_clip model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .config import ClipConfig
from .errors import ConfigError
from .identity import is_weights_path, weights_sha256
from .records import ModelIdentity

log = logging.getLogger("vidsearch")

# Called with the fp32 model, its tokenizer and its identity once loaded, before the cast to the compute precision
# (vidsearch.text_export writes the text tower for queries so).
OnLoaded = Callable[[object, object, ModelIdentity], None]


def _architecture(model: str) -> str:
    """Register a model-config JSON with open_clip, so a new architecture is a file, not code."""
    import open_clip

    config_path = Path(model)
    if config_path.suffix == ".json":
        if not config_path.is_file():
            raise ConfigError(f"CLIP model config not found: {config_path}")
        open_clip.add_model_config(config_path)
        return config_path.stem
    if model not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model {model!r}; see open_clip.list_models()")
    return model


def _compute_dtype(precision: str, device: str):
    """"auto": fp16 on CUDA; bf16 on CPUs with AMX matrix units, where ViT-B-32 runs 3-4.5x faster than fp32 with
    embeddings at cosine 0.9999 to fp32 (scripts/bench_inference.py); fp32 elsewhere, since without AMX
    bf16 is slower than fp32. "fp32" and "bf16" force one."""
    import torch

    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ConfigError(f"clip precision must be auto, fp32 or bf16, not {precision!r}")
    if device == "cuda":
        return torch.float16
    return torch.bfloat16 if torch.cpu._is_amx_tile_supported() else torch.float32


class ClipEmbedder:
    """An open_clip model loaded once; images and texts go through it in batches."""

    def __init__(self, config: ClipConfig, device: str, on_loaded: OnLoaded | None = None):
        import open_clip
        import torch

        architecture = _architecture(config.model)
        pretrained = config.pretrained or None
        weights_file = Path(pretrained) if pretrained and is_weights_path(pretrained) else None
        if weights_file and not weights_file.is_file():
            raise ConfigError(f"CLIP weights file not found: {weights_file}")
        if pretrained and weights_file is None:
            log.info("loading open_clip %s/%s (downloaded on first use)", architecture, pretrained)
        model, _, preprocess = open_clip.create_model_and_transforms(
            architecture, pretrained=str(weights_file) if weights_file else pretrained, device=device
        )
        self.config = config
        self.device = device
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(architecture)
        self.batch_size = config.batch_size
        model.eval()
        with torch.inference_mode():
            dim = int(model.encode_text(self.tokenizer(["a"]).to(device)).shape[-1])
        weights = f"sha256:{weights_sha256(weights_file)}" if weights_file else f"open_clip:{pretrained}"
        self.identity = ModelIdentity(model=architecture, weights=weights, dim=dim)
        if on_loaded is not None:
            on_loaded(model, self.tokenizer, self.identity)
        self.dtype = _compute_dtype(config.precision, device)
        self.model = model.to(self.dtype)
        # the temperature the model was trained with turns similarities into label probabilities
        self.logit_scale = float(self.model.logit_scale.detach().exp())

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per RGB uint8 image."""
        import torch
        from PIL import Image

        if not images:
            return np.zeros((0, self.identity.dim), dtype=np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack(
                [self.preprocess(Image.fromarray(img)) for img in images[start : start + self.batch_size]]
            ).to(self.device)
            with torch.inference_mode():
                out.append(self.normalized(self.model.encode_image(batch.to(self.dtype))))
        return np.concatenate(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
            with torch.inference_mode():
                out.append(self.normalized(self.model.encode_text(tokens)))
        return np.concatenate(out) if out else np.zeros((0, self.identity.dim), dtype=np.float32)

    @staticmethod
    def normalized(features) -> np.ndarray:
        features = features.float()
        features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return features.cpu().numpy().astype(np.float32)


