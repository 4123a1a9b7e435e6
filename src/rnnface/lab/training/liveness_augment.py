"""Photometric augmentation of a camera frame for the liveness detector: light, colour, blur and JPEG.

Cameras differ in exposure, white balance, focus and compression; an attack detector that generalizes must not
read any of them as "live" or "attack". Geometry is left alone: the face box found on the original frame still
holds, and a context crop keeps what surrounds the face.
"""

from __future__ import annotations

import cv2
import numpy as np


def photometric(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 frame with random exposure and gamma, per-channel gains (white balance), saturation, then
    possibly a Gaussian blur and a JPEG re-encoding at quality 30-90."""
    x = photo.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.6, 1.4), 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    x = x * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.6, 1.3)
    out = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.0))
    if rng.random() < 0.6:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert decoded is not None  # the JPEG just encoded
        out = decoded[..., ::-1]
    return np.ascontiguousarray(out)
