"""Annotated pictures: boxes, landmarks and labels drawn on a copy of the image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rnnface.detection import Face
from rnnface.errors import ImageError
from rnnface.io.paths import atomic_output

_BOX = (0, 200, 255)
_POINT = (255, 64, 64)


def draw_faces(image: np.ndarray, faces: Sequence[Face], labels: Sequence[str] | None = None) -> np.ndarray:
    """A copy of RGB `image` with each face's box, 5 landmarks and label (default: its number)."""
    out = np.ascontiguousarray(image).copy()
    thickness = max(1, round(max(out.shape[:2]) / 300))
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), _BOX, thickness)
        for x, y in face.landmarks:
            cv2.circle(out, (int(round(x)), int(round(y))), thickness + 1, _POINT, -1)
        label = labels[i] if labels is not None else f"{i}: {face.score:.2f}"
        scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y1 - th - 4)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 4), _BOX, -1)
        cv2.putText(
            out, label, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA
        )
    return out


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB uint8 array; the format follows the file suffix (.png, .jpg, ...)."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ImageError(
            f"{path}: cannot write an image with this name (unknown suffix {path.suffix!r}; use .png or .jpg)"
        )
    with atomic_output(path, "picture") as tmp:
        Image.fromarray(image).save(tmp, format=image_format)
    return path
