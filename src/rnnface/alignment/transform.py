"""5-point similarity alignment onto the ArcFace template.

The template is the standard 112x112 ArcFace/insightface landmark set; other output sizes scale
it uniformly. The transform is the least-squares similarity (rotation, uniform scale,
translation) of Umeyama (1991), so all 5 landmarks count, not only the eyes.

Fallback (no landmarks, e.g. no face detected): the central square of side
`fallback_crop * min(H, W)` resized to the output size, and the result is flagged `fallback=True`
so callers can count or drop such crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: ArcFace 112x112 landmark template: left eye, right eye, nose tip, left and right mouth corner.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

#: Faces are aligned at this canonical size (the ArcFace template); backbones resize from it.
ALIGN_SIZE = 112


@dataclass(frozen=True)
class AlignedFace:
    """A canonical face crop and how it was made."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    matrix: np.ndarray  # (2, 3) affine map from source pixels to crop pixels
    fallback: bool  # True when no landmarks were available (centre crop)


def template(size: int = 112) -> np.ndarray:
    """The ArcFace landmark template scaled to a `size` x `size` crop."""
    return ARCFACE_TEMPLATE * (size / 112.0)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) mapping points `src` onto `dst` (Umeyama)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # reflection: flip the smallest axis
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The `size` square that the affine `matrix` maps `image` onto (area-resampled first when it shrinks a lot)."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        # Strong minification: area-resample first so the bilinear warp does not alias.
        factor = 2.0 * scale
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        ratio = np.array([small.shape[1] / w, small.shape[0] / h])
        # cv2.resize maps pixel centres: x_small = (x + 0.5) * ratio - 0.5.
        linear = matrix[:, :2] / ratio
        shift = matrix[:, :2] @ (0.5 / ratio - 0.5)
        matrix = np.column_stack([linear, matrix[:, 2] + shift])
        image = small
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray | None,
    size: int = 112,
    fallback_crop: float = 1.0,
) -> AlignedFace:
    """Warp `image` so the 5 `landmarks` land on the template of a `size` crop.

    With `landmarks=None`, returns the flagged centre-crop fallback described in the module doc.
    """
    if landmarks is not None:
        matrix = estimate_similarity(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), template(size))
        return AlignedFace(warp_crop(image, matrix, size), matrix, fallback=False)
    if not 0.0 < fallback_crop <= 1.0:
        raise ValueError(f"fallback_crop must be in (0, 1], got {fallback_crop}")
    height, width = image.shape[:2]
    side = fallback_crop * min(height, width)
    scale = size / side
    matrix = np.array([[scale, 0.0, -(width - side) / 2 * scale], [0.0, scale, -(height - side) / 2 * scale]])
    return AlignedFace(warp_crop(image, matrix, size), matrix, fallback=True)
