"""Embed images and texts into one normalized vector space with an open_clip model."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .config import ClipConfig
from .errors import ConfigError
from .identity import is_weights_path, weights_sha256
from .records import ModelIdentity
from .threads import configure_torch, prepare_torch

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


PRECISIONS = ("auto", "fp32", "bf16", "int8")


def resolve_precision(precision: str, device: str, amx: bool) -> str:
    """The precision CLIP runs in: "fp16", "bf16", "fp32", "int8" (the image tower in dynamic int8, texts in fp32)
    or "int8-if-agrees" (fp32 until a check on the archive's own images adopts int8: vidsearch.precision).

    "auto": fp16 on CUDA; bf16 on CPUs with AMX matrix units, where ViT-B-32 runs 3-4.5x faster than fp32 with
    embeddings at cosine 0.9999 to fp32 (scripts/bench_inference.py); on other CPUs int8 where it agrees, since
    without AMX bf16 is slower than fp32 and int8 runs the image tower up to twice as fast on VNNI; fp32 on MPS.
    "fp32", "bf16" and "int8" force one; int8 runs on the CPU only."""
    if precision not in PRECISIONS:
        raise ConfigError(f"clip precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "int8" and device != "cpu":
        raise ConfigError(f"clip precision int8 runs on the CPU only, not on {device}")
    if precision != "auto":
        return precision
    if device == "cuda":
        return "fp16"
    if device != "cpu":
        return "fp32"
    return "bf16" if amx else "int8-if-agrees"


class ClipEmbedder:
    """An open_clip model loaded once; images and texts go through it in batches."""

    def __init__(self, config: ClipConfig, device: str, on_loaded: OnLoaded | None = None):
        prepare_torch()
        import open_clip
        import torch

        configure_torch()

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
        self.precision = resolve_precision(config.precision, device, torch.cpu._is_amx_tile_supported())
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)
        self.text_precision = str(self.dtype).removeprefix("torch.")
        self.model = model.to(self.dtype)
        self.image_precision = self.text_precision
        self._int8_visual = None
        if self.precision == "int8":
            self.use_int8()
        # the temperature the model was trained with turns similarities into label probabilities
        self.logit_scale = float(self.model.logit_scale.detach().exp())

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per RGB uint8 image."""
        return self._embed_images(images, self.model.visual)

    def int8_visual(self):
        """The image tower with its linear layers in dynamic int8 (weights int8, activations quantized per batch),
        made once from the fp32 tower."""
        import copy

        import torch

        if self._int8_visual is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
                self._int8_visual = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(self.model.visual), {torch.nn.Linear}, dtype=torch.qint8
                )
        return self._int8_visual

    def use_int8(self) -> None:
        """From now on images go through the int8 image tower; texts stay fp32."""
        self.model.visual = self.int8_visual()
        self.image_precision = "int8"

    def embed_images_int8(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self._embed_images(images, self.int8_visual())

    def _embed_images(self, images: Sequence[np.ndarray], visual) -> np.ndarray:
        import torch
        from PIL import Image

        if not len(images):
            return np.zeros((0, self.identity.dim), dtype=np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack(
                [self.preprocess(Image.fromarray(img)) for img in images[start : start + self.batch_size]]
            ).to(self.device)
            with torch.inference_mode():
                out.append(self.normalized(visual(batch.to(self.dtype))))
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


