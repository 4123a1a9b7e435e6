"""Quality cues of a face crop: how much a recognizer can trust it (the recurrent aggregator weighs faces by them)."""

from __future__ import annotations

import cv2
import numpy as np

#: Cues per face: detection score, face size, sharpness.
NUM_CUES = 3


def quality_cues(crop: np.ndarray, score: float, box_height: float) -> np.ndarray:
    """(detection score, face size, sharpness), each scaled to about [0, 1]."""
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return np.array([score, min(box_height / 224.0, 1.0), min(np.log1p(sharpness) / 8.0, 1.0)], dtype=np.float32)
