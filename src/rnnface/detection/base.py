"""The detector interface, the Face record it returns, and the backend registry."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from rnnface.registry import Registry

#: Landmark order used everywhere in rnnface (and by ArcFace): eye centres, nose tip, mouth corners,
#: "left"/"right" as seen in the image.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in."""

    box: np.ndarray  # (4,) float: x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2) float, in LANDMARK_NAMES order

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": {
                name: [round(float(x), 2), round(float(y), 2)] for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)
            },
        }


class Detector(ABC):
    """Finds faces in RGB uint8 images.

    Subclasses implement `_detect` on an image no larger than `max_side`; `detect` downscales
    bigger images first and maps the results back, so a 24-megapixel photo costs no more than a
    1280-pixel one. One instance may be shared by threads: calls to `_detect` are serialized,
    because backends such as OpenCV's DNN networks keep per-call state.
    """

    def __init__(self, min_score: float = 0.9, max_side: int = 1280) -> None:
        self.min_score = min_score
        self.max_side = max_side
        self._lock = threading.Lock()

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[Face]:
        """Detect faces in an RGB uint8 image of at most `max_side` pixels a side."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces with score >= min_score, largest first."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            found = self._detect(small)
        faces = [f for f in found if f.score >= self.min_score]
        if scale < 1.0:
            faces = [Face(f.box / scale, f.score, f.landmarks / scale) for f in faces]
        return sorted(faces, key=lambda f: f.area, reverse=True)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


_DETECTORS: Registry[Detector] = Registry("detector")
register_detector = _DETECTORS.register


def create_detector(name: str, **kwargs: Any) -> Detector:
    """Build the detector backend registered as `name`."""
    return _DETECTORS.get(name)(**kwargs)


def list_detectors() -> list[str]:
    """Names of the registered detector backends."""
    return _DETECTORS.names()
