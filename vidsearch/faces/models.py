"""Face models behind one small interface: a detector that finds faces in a picture, and a descriptor that turns
each face, aligned by five landmarks, into a vector whose distance says whether two faces are one person.

dlib's models run offline from the `face_recognition_models` package: the HOG or MMOD CNN detector, the 5-point
landmarks (the 68-point model's training data forbids commercial use, so it is not used), and the ResNet descriptor
(99.38 % on LFW; public domain / CC0). An ONNX descriptor (ArcFace-class, 112x112 aligned input) can take the
ResNet's place by path; its threshold is then the user's to set.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import FaceConfig
from ..errors import ConfigError
from ..records import Box

_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
_MMOD = "mmod_human_face_detector.dat"
_CHIP_SIZE = 112  # ArcFace-class models take aligned 112x112 faces


@dataclass(frozen=True, slots=True)
class FoundBox:
    """A face the detector found: its box in the searched picture's pixels and the detector's confidence."""

    box: Box
    score: float


class FaceDetector(Protocol):
    def find(self, image: np.ndarray, upsample: int) -> list[FoundBox]: ...


class FaceDescriptor(Protocol):
    dim: int

    def describe(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """One float32 row per box of `image` (H x W x 3 RGB uint8)."""


def model_file(name: str) -> Path:
    """A file of the `face_recognition_models` package, found without importing it (its __init__ needs
    pkg_resources, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("faces need the face models: pip install 'vidsearch[faces]'")
    return Path(spec.submodule_search_locations[0]) / "models" / name


def _dlib():
    try:
        import dlib
    except ImportError:
        raise ConfigError("faces need dlib: pip install 'vidsearch[faces]'") from None
    return dlib


def _rectangle(dlib, box: Box):
    return dlib.rectangle(int(round(box.x1)), int(round(box.y1)), int(round(box.x2)), int(round(box.y2)))


def _box(rect) -> Box:
    return Box(float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector: fast on a CPU, frontal faces of 80 px and more per
    upsampling (40 px after one doubling)."""

    def __init__(self):
        self._detect = _dlib().get_frontal_face_detector()

    def find(self, image: np.ndarray, upsample: int) -> list[FoundBox]:
        rects, scores, _ = self._detect.run(image, upsample)
        return [FoundBox(_box(rect), float(score)) for rect, score in zip(rects, scores)]


class CnnDetector:
    """dlib's MMOD CNN face detector: finds smaller and turned faces than HOG, at many times its cost on a CPU."""

    def __init__(self):
        self._detect = _dlib().cnn_face_detection_model_v1(str(model_file(_MMOD)))

    def find(self, image: np.ndarray, upsample: int) -> list[FoundBox]:
        return [FoundBox(_box(found.rect), float(found.confidence)) for found in self._detect(image, upsample)]


class DlibDescriptor:
    """dlib's ResNet face descriptor (128-d) on faces aligned by the 5-point landmarks."""

    dim = 128

    def __init__(self):
        dlib = _dlib()
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(model_file(_LANDMARKS)))
        self._describe = dlib.face_recognition_model_v1(str(model_file(_RESNET)))

    def describe(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        if not boxes:
            return np.zeros((0, self.dim), np.float32)
        shapes = self._dlib.full_object_detections()
        for box in boxes:
            shapes.append(self._landmarks(image, _rectangle(self._dlib, box)))
        return np.asarray(self._describe.compute_face_descriptor(image, shapes), dtype=np.float32)


class OnnxDescriptor:
    """An ONNX face-recognition model (ArcFace-class: 1x3x112x112 input scaled to [-1, 1], one vector out) on
    faces aligned by dlib's 5-point landmarks; vectors are L2-normalized."""

    def __init__(self, path: Path):
        import onnxruntime

        if not path.is_file():
            raise ConfigError(f"face descriptor model {path}: no such file")
        dlib = _dlib()
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(model_file(_LANDMARKS)))
        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def describe(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        if not boxes:
            return np.zeros((0, self.dim), np.float32)
        chips = [
            self._dlib.get_face_chip(image, self._landmarks(image, _rectangle(self._dlib, box)), size=_CHIP_SIZE)
            for box in boxes
        ]
        batch = (np.stack(chips).astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 127.5
        vectors = self._session.run(None, {self._input: batch})[0].reshape(len(boxes), -1)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class FaceModel:
    """What finds and describes faces, loaded once."""

    detector: FaceDetector
    descriptor: FaceDescriptor


def load_face_model(config: FaceConfig) -> FaceModel:
    detectors = {"hog": HogDetector, "cnn": CnnDetector}
    if config.detector not in detectors:
        raise ConfigError(f"face detector must be one of {', '.join(detectors)}, not {config.detector!r}")
    descriptor = DlibDescriptor() if config.descriptor == "dlib" else OnnxDescriptor(Path(config.descriptor))
    return FaceModel(detectors[config.detector](), descriptor)
