"""Settings: the shipped defaults in configs/default.json, overridden by the caller."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from .errors import ConfigError

log = logging.getLogger("vidsearch")


@dataclass(frozen=True, slots=True)
class ClipConfig:
    model: str  # open_clip architecture name, or path to a model-config JSON
    pretrained: str | None  # open_clip pretrained tag, or path to a weights file
    batch_size: int
    # "auto": fp16 on CUDA, bf16 on CPUs with AMX, else int8 where a check on the archive's own images agrees with
    # fp32 (vidsearch.precision), fp32 otherwise; or "fp32", "bf16" or "int8" to force one
    precision: str
    int8_min_cosine: float = 0.99  # the int8 check's bounds: every sampled image's cosine to its fp32 vector,
    int8_min_label_agreement: float = 0.95  # the share of attribute answers unchanged,
    int8_min_rank_correlation: float = 0.95  # and the mean Spearman rho of the vocabulary's prompt order;
    int8_min_speedup: float = 1.25  # and int8 images per second over fp32's: without VNNI int8 is no faster


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    weights: str  # ultralytics weights name (downloaded by ultralytics) or local path
    labels: tuple[str, ...]  # class names that are tracked, cropped and embedded (persons, vehicles)
    objects: bool  # keep the detector's other classes too, as objects per frame, to filter searches by
    confidence: float
    merge_iou: float  # boxes overlapping more than this are one object
    image_size: int
    batch_size: int
    cpu_runtime: str  # "onnxruntime": the same model exported to ONNX, 2.3x faster on CPU, same boxes; or "torch"
    # "auto": frames over 1.5x image_size on a side are also seen in tiles at native resolution, where a far
    # person is not shrunk below what the detector finds; "on": every frame; "off": whole frames only
    tiles: str
    # the large tiles' longest side, px: a video whose small tiles (image_size) mostly change goes on in these,
    # which see fewer pixels twice (vidsearch.detect.SceneTiles)
    tile_size: int
    tile_overlap: int  # pixels neighbouring tiles share: a person shorter than this is whole in some tile


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
    batch_megabytes: float  # a batch ends once its pixels reach this much: 6 frames of 4K, 2 of 8K
    prefetch_batches: int  # decoded batches waiting for the models: decoding runs ahead by this much
    decode_timeout_s: float  # a file whose decoder sends no frame for this long is given up (its process killed)
    decode_cap_s_per_video_s: float  # nor may a file's whole decode take longer than the timeout + this x its length


@dataclass(frozen=True, slots=True)
class DedupConfig:
    enabled: bool
    grid: tuple[int, int]  # columns, rows of the grey grid compared between frames, at the least
    pixel_delta: int  # a grid point changed when its grey level moved more than this (0-255)
    max_changed_share: float  # a frame with fewer changed points than this share of `grid`'s is a duplicate
    # larger frames get a finer grid, its points at most this many pixels apart, and need the same count of
    # changed points: a figure's size in pixels, not its share of the picture, makes a frame new
    max_spacing: int = 16


@dataclass(frozen=True, slots=True)
class TrackConfig:
    max_gap_s: float  # a track not seen for longer than this has ended
    max_speed: float  # fastest a person moves, in box heights per second (walking is about 0.8)
    jitter: float  # how far a box's centre shifts, in box heights, for a person standing still
    max_colour_distance: float  # above this colour difference (0-1) two crops are not the same person
    crop_window_s: float  # each track embeds its best crop once per window


@dataclass(frozen=True, slots=True)
class ThingsConfig:
    # family name -> {"classes": [...], "attributes": vocabulary file in configs/ or a path, "track": {key: value}
    # overriding the track settings}: how tracked classes are grouped, read and followed (vidsearch.things)
    families: dict


@dataclass(frozen=True, slots=True)
class IndexConfig:
    factory: str  # faiss index_factory string
    checkpoint_seconds: float  # how often ingest saves the index while running


@dataclass(frozen=True, slots=True)
class SearchConfig:
    moment_gap_s: float  # frame hits of one video at most this far apart are one moment
    overfetch: int  # candidates fetched per result wanted, before grouping into moments and appearances
    exact_below: int  # a filter admitting at most this many vectors is searched exactly over them alone
    exclude_weight: float  # how hard a --not phrase pushes its matches down
    attribute_weight: float  # how much the named attributes' mean probability adds to a person's score
    attributes: str | None  # the attribute vocabulary file; None: the shipped configs/attributes.yaml
    min_score: dict  # calibrated "no good match" threshold per model ("architecture/pretrained")


@dataclass(frozen=True, slots=True)
class CameraConfig:
    pattern: str | None  # a regular expression over the path whose group (?P<camera>...) names the camera


@dataclass(frozen=True, slots=True)
class ClockConfig:
    # a regular expression over the path with groups year, month, day, hour, minute, second (and offset),
    # tried before the built-in name patterns
    pattern: str | None


@dataclass(frozen=True, slots=True)
class ScreenTextConfig:
    enabled: bool  # read text in kept frames at every ingest (ingest --ocr does it for one call)
    min_confidence: float  # readings the recognizer is less sure of are dropped
    within_labels: tuple[str, ...]  # detector classes (vehicles) whose boxes are read again at their own scale
    within_min_height: int  # pixels: a smaller box holds no readable plate or number
    max_gap_s: float  # the same text read again within this time (and in about the same place) is one span
    overlay_frames: int  # frames read for the clock of a burned-in overlay (ingest --time-from overlay)
    overlay_day_first: bool  # an overlay date like 05-06-2024 is day first (else month first, as 08-28-2024 must be)


@dataclass(frozen=True, slots=True)
class DistributedConfig:
    cpus_per_task: int  # CPUs a Ray task reserves, and torch's thread count inside it
    gpus_per_task: float  # GPUs a Ray task reserves when the cluster has GPUs


@dataclass(frozen=True, slots=True)
class FaceConfig:
    enabled: bool  # find faces at ingest: off unless asked (face descriptors are biometric data)
    detector: str  # "hog" (dlib's HOG, fast on CPUs) or "cnn" (dlib's MMOD CNN: smaller and turned faces, slower)
    descriptor: str  # "dlib" (dlib's ResNet, 128-d) or the path of an ONNX model taking aligned 112x112 faces
    threshold: float  # descriptor distance (L2) below which two faces are one person: dlib's 0.6
    # the same for two identities' pooled descriptors, when grouping: a mean of several faces is steadier than one
    # face, so two people's means come closer than their faces do (0.60 against 0.63-0.72 on the shared footage)
    group_threshold: float
    person_upsample: int  # times a person's head region is doubled before detection (HOG finds faces >= 80 px)
    frame_upsample: int  # the same for whole frames without persons
    min_size: int  # faces smaller than this (px, the box's shorter side) are too small to describe


@dataclass(frozen=True, slots=True)
class SpeechConfig:
    enabled: bool  # transcribe the sound of videos that have it
    model: str  # a faster-whisper model name (downloaded on first use) or a local model folder
    language: str | None  # None: detected per video
    compute_type: str  # "auto": int8 on CPU, float16 on CUDA; or a CTranslate2 compute type
    cpu_threads: int  # threads the recognizer uses on CPU; 0: vidsearch.threads's share (half the cores)
    beam_size: int
    # Whisper's own rule, and where it decodes again at a higher temperature: a stretch is silence when
    # no_speech_prob is above no_speech_threshold and avg_logprob below log_prob_threshold
    no_speech_threshold: float
    log_prob_threshold: float
    # the hallucination guard on what it writes: a segment is dropped as noise when no_speech_prob is above
    # no_speech_threshold and its words are less sure than guard_log_prob ("You" over silence: -0.9), or when they
    # are less sure than min_avg_logprob whatever no_speech_prob says
    guard_log_prob: float
    min_avg_logprob: float
    vad_min_silence_ms: int  # silences longer than this split speech into separate stretches


@dataclass(frozen=True, slots=True)
class Settings:
    archive: Path
    clip: ClipConfig
    detector: DetectorConfig
    crop: CropConfig
    sampling: SamplingConfig
    dedup: DedupConfig
    track: TrackConfig
    things: ThingsConfig
    index: IndexConfig
    search: SearchConfig
    distributed: DistributedConfig
    cameras: CameraConfig
    clock: ClockConfig
    screen_text: ScreenTextConfig
    faces: FaceConfig
    speech: SpeechConfig
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
        things=_section(ThingsConfig, raw["things"]),
        index=_section(IndexConfig, raw["index"]),
        search=_section(SearchConfig, raw["search"]),
        distributed=_section(DistributedConfig, raw["distributed"]),
        cameras=_section(CameraConfig, raw["cameras"]),
        clock=_section(ClockConfig, raw["clock"]),
        screen_text=_section(ScreenTextConfig, raw["screen_text"]),
        faces=_section(FaceConfig, raw["faces"]),
        speech=_section(SpeechConfig, raw["speech"]),
    )


def load_settings(
    archive: Path,
    *,
    clip_model: str | None = None,
    clip_pretrained: str | None = None,
    yolo_weights: str | None = None,
    device: str = "auto",
    precision: str | None = None,
    asr_model: str | None = None,
) -> Settings:
    """Defaults with the options a user gives on the command line or in the environment."""
    settings = default_settings(Path(archive))
    asr_model = asr_model or os.environ.get("VIDSEARCH_ASR_MODEL")
    clip = settings.clip
    if clip_model is not None:
        clip = replace(clip, model=clip_model, pretrained=clip_pretrained)
    elif clip_pretrained is not None:
        clip = replace(clip, pretrained=clip_pretrained)
    if precision is not None:
        clip = replace(clip, precision=precision)
    detector = settings.detector
    if yolo_weights is not None:
        detector = replace(detector, weights=yolo_weights)
    return replace(
        settings,
        clip=clip,
        detector=detector,
        speech=replace(settings.speech, model=asr_model) if asr_model else settings.speech,
        device=device,
        clip_chosen=clip_model is not None or clip_pretrained is not None,
    )


def cache_dir() -> Path:
    """Where derived model files (the detector's ONNX export) are kept: $VIDSEARCH_CACHE or ~/.cache/vidsearch."""
    return Path(os.environ.get("VIDSEARCH_CACHE") or Path.home() / ".cache" / "vidsearch")


DEVICES = ("auto", "cpu", "cuda", "mps")


class DeviceProbes(Protocol):
    """Which accelerators the installed PyTorch can use."""

    def cuda(self) -> bool: ...

    def mps(self) -> bool: ...


class TorchProbes:
    """The installed PyTorch's own answers (importing torch on first use)."""

    def cuda(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def mps(self) -> bool:
        # Apple's Metal backend: PyTorch builds for Apple Silicon have it, and it needs macOS 12.3 or later
        import torch

        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())


def choose_device(device: str, probes: DeviceProbes | None = None) -> tuple[str, str]:
    """The device to run the models on ("cuda", "mps" or "cpu") for a --device setting, and why, in words.

    "auto" takes CUDA, then Apple's MPS where PyTorch has it, then the CPU. A named accelerator that PyTorch
    cannot use is a ConfigError rather than a failure at the first model call. "cpu" asks PyTorch nothing.
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return "cpu", "asked for"
    probes = probes or TorchProbes()
    if device == "cuda":
        if not probes.cuda():
            raise ConfigError("device cuda: PyTorch finds no CUDA GPU here (use --device auto or cpu)")
        return "cuda", "asked for"
    if device == "mps":
        if not probes.mps():
            raise ConfigError("device mps: PyTorch has no Apple MPS backend here (use --device auto or cpu)")
        return "mps", "asked for"
    if probes.cuda():
        return "cuda", "auto: a CUDA GPU"
    if probes.mps():
        return "mps", "auto: no CUDA GPU; Apple MPS (untested)"
    return "cpu", "auto: no CUDA GPU, no Apple MPS"


def resolve_device(device: str, probes: DeviceProbes | None = None) -> str:
    """choose_device's device; the choice and its reason are logged (shown with -v)."""
    chosen, reason = choose_device(device, probes)
    log.info("device: %s (%s)", chosen, reason)
    return chosen
