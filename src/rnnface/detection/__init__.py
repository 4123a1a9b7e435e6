"""Face detection: boxes, scores and the 5 standard landmarks, behind named backends."""

from rnnface.detection import mtcnn as _mtcnn  # noqa: F401  (registers MTCNN and "none")
from rnnface.detection import yunet as _yunet  # noqa: F401  (registers the default backend)
from rnnface.detection.base import (
    DetectionSettings,
    Detector,
    Face,
    box_iou,
    create_detector,
    face_at,
    list_detectors,
    main_faces,
    most_face_like,
    plausible_landmarks,
    register_detector,
    whole_image,
)

#: The default backend's name. The detector users get (this backend, with the optional FaceNet check) is assembled
#: in one place, `rnnface.recognition.faceness.face_detector`.
DEFAULT_DETECTOR = "yunet"

#: The backend that does no detection: the photo is the face (`--no-detect`).
NO_DETECTOR = "none"

__all__ = [
    "DEFAULT_DETECTOR",
    "NO_DETECTOR",
    "DetectionSettings",
    "Detector",
    "Face",
    "box_iou",
    "create_detector",
    "face_at",
    "list_detectors",
    "main_faces",
    "most_face_like",
    "plausible_landmarks",
    "register_detector",
    "whole_image",
]
