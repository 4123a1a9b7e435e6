"""The crop the liveness model reads: grey, 64x64, the two detected eyes where NUAA's normalization puts them.

NUAA's faces were normalized on the eyes alone, so the map is the similarity that sends the detector's two eye
landmarks onto the model's eye positions (the nose and mouth would pull a turned face elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from rnnface.alignment import estimate_similarity, warp_crop


def liveness_crop(image: np.ndarray, landmarks: np.ndarray, eyes: Sequence[Sequence[float]], size: int) -> np.ndarray:
    """(size, size) uint8 grey crop of the face whose 5 landmarks are given, from an RGB (or grey) image, its eyes
    put at `eyes` (the model's crop geometry: `LivenessConfig.eyes` and `.size`)."""
    detected = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)[:2]
    matrix = estimate_similarity(detected, np.asarray(eyes, dtype=np.float64))
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return warp_crop(grey, matrix, size)
