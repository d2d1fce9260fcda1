"""Settings: the shipped defaults in configs/default.json, overridden by the caller."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class ClipConfig:
    model: str  # open_clip architecture name, or path to a model-config JSON
    pretrained: str | None  # open_clip pretrained tag, or path to a weights file
    batch_size: int
    precision: str  # "auto": fp16 on CUDA, bf16 on CPUs with bf16 hardware, else fp32; or "fp32"


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    weights: str  # ultralytics weights name (downloaded by ultralytics) or local path
    labels: tuple[str, ...]  # class names of the detector to keep
    confidence: float
    merge_iou: float  # boxes overlapping more than this are one object
    image_size: int
    batch_size: int
    cpu_runtime: str  # "onnxruntime": the same model exported to ONNX, 2.3x faster on CPU, same boxes; or "torch"


@dataclass(frozen=True, slots=True)
class CropConfig:
    margin: float  # share of the box's size added on each side
    min_width: int
    min_height: int


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    fps: float
    mode: str  # "time": frames nearest to each 1/fps step; "keyframes": keyframes only, a coarse fast mode
    reader: str  # "pyav", "decord", or "auto" (decord, PyAV where decord cannot read a file)
    decode_batch: int
    prefetch_batches: int  # decoded batches waiting for the models: decoding runs ahead by this much


@dataclass(frozen=True, slots=True)
class DedupConfig:
    enabled: bool
    grid: tuple[int, int]  # columns, rows of the grey grid compared between frames
    pixel_delta: int  # a grid point changed when its grey level moved more than this (0-255)
    max_changed_share: float  # a frame with fewer changed points than this share is a duplicate


@dataclass(frozen=True, slots=True)
class TrackConfig:
    max_gap_s: float  # a track not seen for longer than this has ended
    max_distance: float  # largest centre shift between samples, in box heights, for the same person
    crop_window_s: float  # each track embeds its best crop once per window


@dataclass(frozen=True, slots=True)
class IndexConfig:
    factory: str  # faiss index_factory string
    checkpoint_seconds: float  # how often ingest saves the index while running


@dataclass(frozen=True, slots=True)
class DistributedConfig:
    cpus_per_task: int  # CPUs a Ray task reserves, and torch's thread count inside it
    gpus_per_task: float  # GPUs a Ray task reserves when the cluster has GPUs


@dataclass(frozen=True, slots=True)
class Settings:
    archive: Path
    clip: ClipConfig
    detector: DetectorConfig
    crop: CropConfig
    sampling: SamplingConfig
    dedup: DedupConfig
    track: TrackConfig
    index: IndexConfig
    distributed: DistributedConfig
    device: str = "auto"
    # True when the caller named a CLIP model; otherwise an existing archive's own model is used.
    clip_chosen: bool = field(default=False)


def _section(cls, data: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def default_settings(archive: Path) -> Settings:
    text = resources.files("vidsearch.configs").joinpath("default.json").read_text()
    raw = json.loads(text)
    return Settings(
        archive=archive,
        clip=_section(ClipConfig, raw["clip"]),
        detector=_section(DetectorConfig, raw["detector"]),
        crop=_section(CropConfig, raw["crop"]),
        sampling=_section(SamplingConfig, raw["sampling"]),
        dedup=_section(DedupConfig, raw["dedup"]),
        track=_section(TrackConfig, raw["track"]),
        index=_section(IndexConfig, raw["index"]),
        distributed=_section(DistributedConfig, raw["distributed"]),
    )


def load_settings(
    archive: Path,
    *,
    clip_model: str | None = None,
    clip_pretrained: str | None = None,
    yolo_weights: str | None = None,
    device: str = "auto",
) -> Settings:
    """Defaults with the options a user gives on the command line or in the environment."""
    settings = default_settings(Path(archive))
    clip = settings.clip
    if clip_model is not None:
        clip = replace(clip, model=clip_model, pretrained=clip_pretrained)
    elif clip_pretrained is not None:
        clip = replace(clip, pretrained=clip_pretrained)
    detector = settings.detector
    if yolo_weights is not None:
        detector = replace(detector, weights=yolo_weights)
    return replace(
        settings,
        clip=clip,
        detector=detector,
        device=device,
        clip_chosen=clip_model is not None or clip_pretrained is not None,
    )


def cache_dir() -> Path:
    """Where derived model files (the detector's ONNX export) are kept: $VIDSEARCH_CACHE or ~/.cache/vidsearch."""
    return Path(os.environ.get("VIDSEARCH_CACHE") or Path.home() / ".cache" / "vidsearch")


def resolve_device(device: str) -> str:
    """'auto' means the GPU when there is one."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, not {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
