"""Detect persons (or other detector classes) in batches of frames, and cut them out."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from .config import CropConfig, DetectorConfig, cache_dir
from .errors import ConfigError
from .records import Box, Crop, Detection, Frame


class Detector:
    """An ultralytics YOLO model, loaded once, run on batches of frames."""

    def __init__(self, config: DetectorConfig, device: str):
        # ultralytics has import-time side effects (settings file, logging): keep it out of `import vidsearch`.
        # Its log goes to stdout, where it would break `--json` output: quiet unless the user asks otherwise.
        os.environ.setdefault("YOLO_VERBOSE", "False")
        from ultralytics import YOLO

        self.config = config
        self.device = device
        if config.cpu_runtime not in ("onnxruntime", "torch"):
            raise ConfigError(f"detector cpu_runtime must be onnxruntime or torch, not {config.cpu_runtime!r}")
        if "/" in config.weights and not Path(config.weights).is_file():
            raise ConfigError(f"YOLO weights file not found: {config.weights}")
        self.model = YOLO(config.weights, task="detect")
        self.runtime = "torch"
        if device == "cpu" and config.cpu_runtime == "onnxruntime":
            self.model = YOLO(str(_onnx_export(self.model)), task="detect")
            self.runtime = "onnxruntime"
        names: dict[int, str] = self.model.names
        by_name = {name: class_id for class_id, name in names.items()}
        missing = [label for label in config.labels if label not in by_name]
        if missing:
            raise ConfigError(f"detector {config.weights} has no class {missing}; it knows {sorted(by_name)}")
        self.class_ids = [by_name[label] for label in config.labels]
        self.names = names

    def detect(self, frames: Sequence[Frame]) -> list[list[Detection]]:
        """Detections for each frame, in frame order."""
        if not frames:
            return []
        results = self.model.predict(
            # ultralytics takes numpy images as BGR
            [frame.image[..., ::-1] for frame in frames],
            conf=self.config.confidence,
            iou=self.config.merge_iou,
            classes=None if self.config.objects else self.class_ids,
            imgsz=self.config.image_size,
            batch=self.config.batch_size,
            quantize=16 if self.device == "cuda" else None,
            device=self.device,
            verbose=False,
        )
        detections = []
        for result in results:
            boxes = result.boxes
            xyxy = boxes.xyxy.cpu().numpy().tolist()
            scores = boxes.conf.cpu().numpy().tolist()
            classes = boxes.cls.cpu().numpy().astype(int).tolist()
            detections.append(
                [
                    Detection(box=Box(*coords), score=score, label=self.names[class_id])
                    for coords, score, class_id in zip(xyxy, scores, classes)
                ]
            )
        return detections


def crop(frame: Frame, detection: Detection, config: CropConfig) -> Crop | None:
    """The detection's pixels with a margin of context, or None when too small to mean anything."""
    box = detection.box
    if box.width < config.min_width or box.height < config.min_height:
        return None
    height, width = frame.image.shape[:2]
    dx, dy = box.width * config.margin, box.height * config.margin
    x1, y1 = max(0, int(box.x1 - dx)), max(0, int(box.y1 - dy))
    x2, y2 = min(width, int(box.x2 + dx + 0.5)), min(height, int(box.y2 + dy + 0.5))
    return Crop(frame=frame, detection=detection, image=frame.image[y1:y2, x1:x2])


def _onnx_export(model) -> Path:
    """The model exported to ONNX once, kept in the cache under its weights' hash and the ultralytics version.

    dynamic=True keeps ultralytics' letterbox as it is for the PyTorch model, so boxes stay the same;
    simplify=False keeps the export from reaching for onnxslim.
    """
    import ultralytics

    weights = Path(model.ckpt_path)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    folder = cache_dir() / "detectors" / f"{weights.stem}-{digest}-ultralytics{ultralytics.__version__}"
    target = folder / f"{weights.stem}.onnx"
    if target.exists():
        return target
    logging.getLogger("vidsearch").info("exporting %s to ONNX in %s (once)", weights, folder)
    # each process exports into its own folder: Ray workers may start together
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    shutil.copy(weights, partial / weights.name)  # export writes beside the weights, which may be read-only
    type(model)(str(partial / weights.name)).export(format="onnx", dynamic=True, simplify=False, verbose=False)
    (partial / weights.name).unlink()
    try:
        partial.rename(folder)
    except OSError:  # another process finished first; its export is the same file
        shutil.rmtree(partial)
    return target
