"""Detect persons (or other detector classes) in batches of frames, and cut them out."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import CropConfig, DedupConfig, DetectorConfig, cache_dir
from .dedup import DuplicateFilter
from .errors import ConfigError
from .records import Box, Crop, Detection, Frame
from .threads import configure_torch, onnx_session_options

TILE_MODES = ("auto", "on", "off")
# Below this a whole frame shrinks a 60 px person to 40 px or more, which YOLO still finds; above it tiles pay.
_AUTO_TILES_ABOVE = 1.5
# YOLO's largest stride: an input's sides are multiples of it
_STRIDE = 32
# Frames in small tiles before a video may go on in large ones: its first, and two more to judge by
_SMALL_TILES_JUDGED_AFTER = 3
# A tile's box this close to an edge it shares with a neighbour is a cut-off part of someone whole next door.
_CUT_MARGIN = 2


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
        if config.tiles not in TILE_MODES:
            raise ConfigError(f"detector tiles must be one of {', '.join(TILE_MODES)}, not {config.tiles!r}")
        if not 0 <= config.tile_overlap < config.image_size // 2:
            raise ConfigError(
                f"detector tile_overlap must be 0 or more and under half of image_size, not {config.tile_overlap}"
            )
        if config.tile_size < config.image_size:
            raise ConfigError(f"detector tile_size must be image_size or more, not {config.tile_size}")
        if "/" in config.weights and not Path(config.weights).is_file():
            raise ConfigError(f"YOLO weights file not found: {config.weights}")
        self.model = YOLO(config.weights, task="detect")
        self.runtime = "torch"
        if device == "cpu" and config.cpu_runtime == "onnxruntime":
            exported = _onnx_export(self.model)
            self.model = YOLO(str(exported), task="detect")
            self.runtime = "onnxruntime"
        names: dict[int, str] = self.model.names
        by_name = {name: class_id for class_id, name in names.items()}
        missing = [label for label in config.labels if label not in by_name]
        if missing:
            raise ConfigError(f"detector {config.weights} has no class {missing}; it knows {sorted(by_name)}")
        self.class_ids = [by_name[label] for label in config.labels]
        self.names = names
        # ultralytics makes its predictor on the first prediction: made here, with a blank frame, so that what it
        # sets can be set right before any frame comes. Its device check sets PyTorch's pool, which CLIP runs on, to
        # a core fewer than the machine has, at most 8 (one of two); vidsearch.threads' count goes back.
        self._predict_batch([np.zeros((64, 64, 3), np.uint8)])
        configure_torch()
        if self.runtime == "onnxruntime":
            self._share_cores(exported)

    def _share_cores(self, exported: Path) -> None:
        """ultralytics makes its ONNX Runtime session without options: replaced by one with the ingest's thread
        settings (vidsearch.threads)."""
        import onnxruntime

        self.model.predictor.model.backend.session = onnxruntime.InferenceSession(
            str(exported), onnx_session_options(), providers=["CPUExecutionProvider"]
        )

    def detect(self, frames: Sequence[Frame], scene: SceneTiles | None = None) -> list[list[Detection]]:
        """Detections for each frame, in frame order.

        Large frames are seen whole (for persons near the camera) and in overlapping tiles at native
        resolution (for persons far away); the boxes are merged as the detector merges its own. With the
        video's `scene`, a tile whose pixels have not changed since it was last seen keeps its detections.
        """
        if not frames:
            return []
        detections = self._predict([frame.image for frame in frames])
        tiled = [i for i, frame in enumerate(frames) if self._tiles_frame(frame.image.shape)]
        if not tiled:
            return detections
        scene = scene or SceneTiles(None)
        runs: list[tuple[Frame, Box]] = []
        # per tiled frame and tile: a position in `runs`, or the detections kept from an earlier call
        sources: list[list[int | list[Detection]]] = []
        for i in tiled:
            sources.append([])
            changed_pixels = 0
            for tile in scene.tiles(frames[i].image.shape, self.config):
                if scene.changed(frames[i], tile):
                    scene.latest[tile] = len(runs)
                    runs.append((frames[i], tile))
                    changed_pixels += tile.width * tile.height
                sources[-1].append(scene.latest[tile])
            scene.ran(frames[i].image.shape, self.config, changed_pixels)
        # all changed tiles of all frames in one call, so the detector runs them in full batches
        found = self._predict_native([frame.image[tile.y1 : tile.y2, tile.x1 : tile.x2] for frame, tile in runs])
        placed = [_placed(in_tile, tile, frame.image.shape) for (frame, tile), in_tile in zip(runs, found)]
        for tile, source in scene.latest.items():
            if isinstance(source, int):
                scene.latest[tile] = placed[source]
        for i, frame_sources in zip(tiled, sources):
            in_tiles = [d for source in frame_sources for d in (placed[source] if isinstance(source, int) else source)]
            detections[i] = _merged(detections[i] + in_tiles, self.config.merge_iou)
        return detections

    def _tiles_frame(self, shape: tuple[int, ...]) -> bool:
        if self.config.tiles == "auto":
            return max(shape[:2]) > _AUTO_TILES_ABOVE * self.config.image_size
        return self.config.tiles == "on"

    def _predict_native(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Each image at its own size, rounded up to the detector's stride: neither shrunk nor enlarged; in batches
        of as many pixels as batch_size inputs of image_size, so that large tiles take no more memory."""
        found: list[list[Detection]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for position, image in enumerate(images):
            by_shape.setdefault(image.shape[:2], []).append(position)
        for shape, positions in by_shape.items():
            height, width = (_STRIDE * math.ceil(side / _STRIDE) for side in shape)
            batch = max(1, self.config.batch_size * self.config.image_size**2 // (height * width))
            in_shape = self._predict([images[p] for p in positions], (height, width), batch)
            for position, detections in zip(positions, in_shape):
                found[position] = detections
        return found

    def _predict(
        self, images: list[np.ndarray], image_size: int | tuple[int, int] | None = None, batch: int | None = None
    ) -> list[list[Detection]]:
        # ultralytics runs a list of images as one batch, whatever `batch` says: a frame's tiles would hold
        # gigabytes of activations at once
        size = batch or self.config.batch_size
        batches = (images[start : start + size] for start in range(0, len(images), size))
        return [found for part in batches for found in self._predict_batch(part, image_size)]

    def _predict_batch(
        self, images: list[np.ndarray], image_size: int | tuple[int, int] | None = None
    ) -> list[list[Detection]]:
        results = self.model.predict(
            # ultralytics takes numpy images as BGR
            [image[..., ::-1] for image in images],
            conf=self.config.confidence,
            iou=self.config.merge_iou,
            classes=None if self.config.objects else self.class_ids,
            imgsz=image_size or self.config.image_size,
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


class SceneTiles:
    """One video's tiles as last given to the detector: a static camera's tiles are run again only where
    something moved, judged as the duplicate-frame test judges whole frames (None: every tile, every time).

    A video starts in small tiles (squares of image_size), so that where little moves little runs. Once its
    changed small tiles hold more pixels a frame than the large tiles (up to tile_size) hold in all, over the frames
    after its first, as in crowds and from moving cameras, it goes on in large tiles: fewer pixels seen twice.
    Without a duplicate test every tile runs every time, so large tiles from the start.
    """

    def __init__(self, dedup: DedupConfig | None):
        self.dedup = dedup
        self._filters: dict[Box, DuplicateFilter] = {}
        self.latest: dict[Box, int | list[Detection]] = {}  # a tile's detections, or its place in the running call
        self.large = dedup is None
        self._frames = 0
        self._small_pixels = 0  # run in small tiles after the first frame, whose tiles are all new

    def tiles(self, shape: tuple[int, ...], config: DetectorConfig) -> list[Box]:
        if self.large:
            return _large_tiles(shape, config)
        return _tiles(shape, config.image_size, config.tile_overlap, fitted=False)

    def changed(self, frame: Frame, tile: Box) -> bool:
        if self.dedup is None:
            return True
        cut = Frame(index=frame.index, t=frame.t, image=frame.image[tile.y1 : tile.y2, tile.x1 : tile.x2])
        return not self._filters.setdefault(tile, DuplicateFilter(self.dedup)).is_duplicate(cut)

    def ran(self, shape: tuple[int, ...], config: DetectorConfig, changed_pixels: int) -> None:
        """After a frame's tiles: `changed_pixels`, what those run held."""
        self._frames += 1
        if self.large or self._frames == 1:
            return
        self._small_pixels += changed_pixels
        large = sum(tile.width * tile.height for tile in _large_tiles(shape, config))
        if self._frames >= _SMALL_TILES_JUDGED_AFTER and self._small_pixels > (self._frames - 1) * large:
            self.large = True
            self._filters.clear()
            self.latest.clear()


def _large_tiles(shape: tuple[int, ...], config: DetectorConfig) -> list[Box]:
    return _tiles(shape, config.tile_size, config.tile_overlap, fitted=True)


def _tiles(shape: tuple[int, ...], size: int, overlap: int, fitted: bool) -> list[Box]:
    """Equal tiles of at most `size` covering the frame, each sharing at least `overlap` pixels with its
    neighbours, all the same size, so they batch as one. Squares of `size` (or the frame's side, if shorter); or,
    `fitted`, as few as `size` allows and no larger than that takes (in steps of the detector's stride)."""
    height, width = shape[:2]

    def spans(length: int) -> tuple[int, list[int]]:
        count = max(1, math.ceil((length - overlap) / (min(size, length) - overlap)))
        covering = _STRIDE * math.ceil((length + (count - 1) * overlap) / count / _STRIDE) if fitted else size
        side = min(length, size, covering)
        if count == 1:
            return side, [0]
        return side, [round(k * (length - side) / (count - 1)) for k in range(count)]

    (tile_width, xs), (tile_height, ys) = spans(width), spans(height)
    return [Box(x, y, x + tile_width, y + tile_height) for y in ys for x in xs]


def _placed(detections: list[Detection], tile: Box, shape: tuple[int, ...]) -> list[Detection]:
    """A tile's detections in frame pixels, less those cut off by an edge the tile shares with a neighbour."""
    height, width = shape[:2]
    placed = []
    for detection in detections:
        box = detection.box
        cut = (
            (tile.x1 > 0 and box.x1 < _CUT_MARGIN)
            or (tile.y1 > 0 and box.y1 < _CUT_MARGIN)
            or (tile.x2 < width and box.x2 > tile.width - _CUT_MARGIN)
            or (tile.y2 < height and box.y2 > tile.height - _CUT_MARGIN)
        )
        if not cut:
            moved = Box(box.x1 + tile.x1, box.y1 + tile.y1, box.x2 + tile.x1, box.y2 + tile.y1)
            placed.append(Detection(box=moved, score=detection.score, label=detection.label))
    return placed


def _merged(detections: list[Detection], iou: float) -> list[Detection]:
    """Greedy non-maximum suppression per label: of boxes overlapping more than `iou`, the best scored stays."""
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(other.label != detection.label or other.box.iou(detection.box) <= iou for other in kept):
            kept.append(detection)
    return kept


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
