"""How a model wants its faces cut out: a crop spec names the method and its geometry.

`template` is the 5-point similarity alignment onto the ArcFace template (the pure recurrent
backbones). `box` is the crop a box-trained CNN saw in training, FaceNet's among them: the
detector box widened by `margin` pixels (half on each side, clipped to the image), resized to a
`resize` square, and its central `size` square kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rnnface.alignment.transform import ALIGN_SIZE, AlignedFace, align_face

CROP_METHODS = ("template", "box")


@dataclass(frozen=True)
class CropSpec:
    method: str = "template"  # template | box
    size: int = ALIGN_SIZE
    margin: int = 0  # box: pixels added around the detector box, half on each side
    resize: int = 0  # box: side of the square the widened box is resized to before the centre crop

    def __post_init__(self) -> None:
        if self.method not in CROP_METHODS:
            raise ValueError(f"crop method must be one of {CROP_METHODS}, got {self.method!r}")
        if self.method == "box" and not 0 < self.size <= self.resize:
            raise ValueError(f"a box crop needs 0 < size <= resize, got size {self.size}, resize {self.resize}")

    def crop(
        self, image: np.ndarray, box: np.ndarray | None, landmarks: np.ndarray | None, fallback_crop: float = 1.0
    ) -> AlignedFace:
        """The crop of one face; with no face (`box`/`landmarks` None) the flagged centre-crop fallback."""
        if self.method == "box" and box is not None:
            return crop_box(image, box, self.margin, self.resize, self.size)
        return align_face(image, landmarks if self.method == "template" else None, self.size, fallback_crop)


def crop_box(image: np.ndarray, box: np.ndarray, margin: int, resize: int, size: int) -> AlignedFace:
    """FaceNet's training crop: box + margin (integer pixels, clipped), bilinear resize to `resize`, centre `size`."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    left, top = int(max(x1 - margin / 2, 0)), int(max(y1 - margin / 2, 0))
    right, bottom = int(min(x2 + margin / 2, w)), int(min(y2 + margin / 2, h))
    if right - left < 1 or bottom - top < 1:
        raise ValueError(f"face box {box.tolist()} lies outside the {w}x{h} image")
    scaled = cv2.resize(image[top:bottom, left:right], (resize, resize), interpolation=cv2.INTER_LINEAR)
    offset = (resize - size) // 2
    sx, sy = resize / (right - left), resize / (bottom - top)
    # cv2.resize maps pixel centres: u = (x - left + 0.5) * sx - 0.5, then the centre crop shifts by offset.
    matrix = np.array([[sx, 0.0, (0.5 - left) * sx - 0.5 - offset], [0.0, sy, (0.5 - top) * sy - 0.5 - offset]])
    return AlignedFace(
        np.ascontiguousarray(scaled[offset : offset + size, offset : offset + size]), matrix, fallback=False
    )


#: Crops by name, for `rnnface prepare --crop`.
CROPS: dict[str, CropSpec] = {
    "arcface": CropSpec(),
    "facenet": CropSpec("box", size=160, margin=44, resize=182),
}
