"""Read text in frames with RapidOCR: PP-OCRv4 text detection and recognition, shipped in its wheel and run by ONNX
Runtime. Each frame is read whole, and the boxes of vehicles are read again at their own scale (the reader enlarges
a small region to its input size), which is where plates and fleet numbers become legible."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import ScreenTextConfig
from ..errors import ConfigError
from ..records import Box, Detection, Frame, TextReading

# a whole-frame reading this much covered by a reading inside a vehicle is the same text, read less closely
_SAME_TEXT_IOU = 0.5


class TextReader:
    """The recognizer, loaded once; reads frames one after another (RapidOCR batches the lines of a frame)."""

    def __init__(self, config: ScreenTextConfig):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            raise ConfigError("reading text on screen needs RapidOCR: pip install 'vidsearch[ocr]'") from None

        self.config = config
        self.engine = RapidOCR()

    def read_frames(
        self, frames: Sequence[Frame], detections: Sequence[Sequence[Detection]]
    ) -> list[list[TextReading]]:
        return [self.read(frame, found) for frame, found in zip(frames, detections)]

    def read(self, frame: Frame, detections: Sequence[Detection] = ()) -> list[TextReading]:
        """The lines of text in a frame; those inside a vehicle's box carry that detection."""
        whole = self.read_image(frame.image)
        inside: list[TextReading] = []
        height, width = frame.image.shape[:2]
        for detection in detections:
            box = detection.box
            if detection.label not in self.config.within_labels or box.height < self.config.within_min_height:
                continue
            x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
            x2, y2 = min(width, int(box.x2 + 0.5)), min(height, int(box.y2 + 0.5))
            if x2 - x1 < 8 or y2 - y1 < 8:
                continue
            inside += self.read_image(frame.image[y1:y2, x1:x2], (x1, y1), detection)
        return [r for r in whole if not any(r.box.iou(v.box) > _SAME_TEXT_IOU for v in inside)] + inside

    def read_image(
        self, image: np.ndarray, offset: tuple[int, int] = (0, 0), within: Detection | None = None
    ) -> list[TextReading]:
        """Lines in an RGB picture, their boxes moved by `offset` (where the picture lies in its frame)."""
        found, _ = self.engine(np.ascontiguousarray(image[..., ::-1]))  # RapidOCR takes OpenCV's BGR
        readings = []
        for corners, text, confidence in found or []:
            text = text.strip()
            if not text or confidence < self.config.min_confidence:
                continue
            xs, ys = [float(x) for x, _ in corners], [float(y) for _, y in corners]
            box = Box(min(xs) + offset[0], min(ys) + offset[1], max(xs) + offset[0], max(ys) + offset[1])
            readings.append(TextReading(box=box, text=text, confidence=float(confidence), within=within))
        return readings
