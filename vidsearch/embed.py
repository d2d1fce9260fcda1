"""Embed images and texts into one normalized vector space with an open_clip model."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import ClipConfig, cache_dir
from .errors import ConfigError

log = logging.getLogger("vidsearch")


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """What makes two sets of vectors comparable: the architecture and the exact weights."""

    model: str
    weights: str  # "sha256:<hex>" of a local file, or "open_clip:<tag>" for a published tag
    dim: int

    def describe(self) -> str:
        return f"{self.model} ({self.weights}, {self.dim}-d)"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: Path) -> str:
    """file_sha256, remembered in the cache by the file's path, size, inode and change times: naming the weights of
    a query's model should not read 600 MB each time."""
    stat = path.stat()
    stamp = [stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]
    memo = cache_dir() / "weights-sha256.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    key = str(path.resolve())
    if known.get(key, {}).get("stamp") == stamp:
        return known[key]["sha256"]
    known[key] = {"stamp": stamp, "sha256": file_sha256(path)}
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_name(f"{memo.name}.partial-{os.getpid()}")
        partial.write_text(json.dumps(known, indent=1))
        os.replace(partial, memo)
    except OSError as error:  # a read-only cache only costs the hashing again
        log.info("cannot remember the hash of %s in %s: %s", path, memo, error)
    return known[key]["sha256"]


def declared_identity(config: ClipConfig) -> tuple[str, str]:
    """(model, weights) as ModelIdentity names them once the model is loaded, without loading it."""
    model = Path(config.model).stem if Path(config.model).suffix == ".json" else config.model
    pretrained = config.pretrained or None
    if pretrained and _is_path(pretrained):
        if not Path(pretrained).is_file():
            raise ConfigError(f"CLIP weights file not found: {pretrained}")
        return model, f"sha256:{weights_sha256(Path(pretrained))}"
    return model, f"open_clip:{pretrained}"


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


def _is_path(pretrained: str) -> bool:
    """open_clip tags are bare words; anything with a folder or a weights suffix is a local file."""
    return os.sep in pretrained or Path(pretrained).suffix in {".pt", ".pth", ".bin", ".safetensors"}


def _compute_dtype(precision: str, device: str):
    """fp16 on CUDA; bf16 on CPUs with AMX matrix units, where ViT-B-32 runs 3-4.5x faster than fp32 with
    embeddings at cosine 0.9999 to fp32 (scripts/bench_inference.py); fp32 elsewhere, since without AMX
    bf16 is slower than fp32."""
    import torch

    if precision == "fp32":
        return torch.float32
    if precision != "auto":
        raise ConfigError(f"clip precision must be auto or fp32, not {precision!r}")
    if device == "cuda":
        return torch.float16
    return torch.bfloat16 if torch.cpu._is_amx_tile_supported() else torch.float32


class ClipEmbedder:
    """An open_clip model loaded once; images and texts go through it in batches."""

    def __init__(self, config: ClipConfig, device: str, export_text_tower: bool = False):
        """With `export_text_tower`, the text tower is also written to ONNX for queries (once per weights)."""
        import open_clip
        import torch

        architecture = _architecture(config.model)
        pretrained = config.pretrained or None
        weights_file = Path(pretrained) if pretrained and _is_path(pretrained) else None
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
        if export_text_tower:
            # from the fp32 weights, before the cast; from a copy, since the TorchScript exporter leaves the modules
            # it traced changed (image vectors then move by about 1e-3)
            _export_text_tower(copy.deepcopy(model), self.tokenizer, self.identity)
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
                out.append(self._normalized(self.model.encode_image(batch.to(self.dtype))))
        return np.concatenate(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
            with torch.inference_mode():
                out.append(self._normalized(self.model.encode_text(tokens)))
        return np.concatenate(out) if out else np.zeros((0, self.identity.dim), dtype=np.float32)

    @staticmethod
    def _normalized(features) -> np.ndarray:
        features = features.float()
        features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return features.cpu().numpy().astype(np.float32)


def _export_text_tower(model, tokenizer, identity: ModelIdentity) -> None:
    """The model's text tower as ONNX in the cache (vidsearch.text_encoder), once per weights, so that queries run
    without torch. Kept only where vidsearch's tokenizer gives this model's token ids, and ONNX Runtime its vectors
    (cosine >= 0.999), on the probe texts; any other model is queried through PyTorch, as before."""
    import onnx
    import open_clip
    import torch

    from .text_encoder import (
        PROBE_TEXTS, TOWER_MODEL, TOWER_SPEC, TOWER_VOCABULARY, ClipTokenizer, OnnxTextEncoder, tower_folder,
    )

    folder = tower_folder(identity)
    if (folder / TOWER_SPEC).is_file():
        return
    expected = np.asarray(tokenizer(list(PROBE_TEXTS)))
    vocabulary = Path(open_clip.tokenizer.default_bpe())
    tokens = ClipTokenizer(vocabulary, expected.shape[-1])(PROBE_TEXTS)
    if not np.array_equal(tokens, expected):
        log.info("%s has a tokenizer of its own: its queries run through PyTorch", identity.model)
        return
    log.info("exporting the text tower of %s to ONNX in %s (once)", identity.describe(), folder)

    class TextTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.clip = model

        def forward(self, tokens):
            return self.clip.encode_text(tokens)

    device = next(model.parameters()).device
    # each process exports into its own folder: Ray workers and a query beside an ingest may start together
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, and exports open_clip well
            torch.onnx.export(
                TextTower(), (torch.from_numpy(tokens[:1]).to(device),), str(partial / "export.onnx"), dynamo=False,
                opset_version=17, input_names=["tokens"], output_names=["features"],
                dynamic_axes={"tokens": {0: "batch"}, "features": {0: "batch"}},
            )
        # weights in a file of their own load in half the time: ONNX Runtime maps them instead of parsing them
        onnx.save_model(
            onnx.load(partial / "export.onnx"), partial / TOWER_MODEL, save_as_external_data=True,
            location=f"{TOWER_MODEL}.data",
        )
        (partial / "export.onnx").unlink()
        shutil.copy(vocabulary, partial / TOWER_VOCABULARY)
        spec = {"context_length": int(expected.shape[-1]), "model": identity.model, "weights": identity.weights}
        (partial / TOWER_SPEC).write_text(json.dumps(spec, indent=1))
        with torch.inference_mode():
            reference = ClipEmbedder._normalized(model.encode_text(torch.from_numpy(tokens).to(device)))
        agreement = float((OnnxTextEncoder(partial, identity).embed_texts(PROBE_TEXTS) * reference).sum(1).min())
    # a text tower that does not export (a custom architecture) is still queried through PyTorch: say so, go on
    except Exception as error:  # noqa: BLE001
        log.warning("could not export the text tower of %s to ONNX (%s): queries load PyTorch", identity.model, error)
        shutil.rmtree(partial, ignore_errors=True)
        return
    if agreement < 0.999:
        log.warning("the ONNX text tower of %s disagrees with PyTorch (cosine %.4f): not used", identity.model,
                    agreement)
        shutil.rmtree(partial)
        return
    try:
        partial.rename(folder)
    except OSError:  # another process finished first; its export is the same
        shutil.rmtree(partial)
