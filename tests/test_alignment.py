"""Alignment: landmarks of a transformed face land back on the template, to sub-pixel accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from rnnface.alignment import align_face, estimate_similarity, template


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def _blob_image(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A black image with one Gaussian spot per point, each in its own colour channel group."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    img = np.zeros((*shape, 3))
    for x, y in points:
        img[..., 0] += 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.clip(img, 0, 255).astype(np.uint8)


def _centroids(crop: np.ndarray, guesses: np.ndarray, radius: int) -> np.ndarray:
    channel = crop[..., 0].astype(np.float64)
    out = []
    for gx, gy in guesses:
        x0, y0 = int(round(gx)) - radius, int(round(gy)) - radius
        win = channel[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
        win = np.where(win > 0.2 * win.max(), win, 0)
        yy, xx = np.mgrid[0 : win.shape[0], 0 : win.shape[1]]
        out.append([x0 + (xx * win).sum() / win.sum(), y0 + (yy * win).sum() / win.sum()])
    return np.array(out)


def test_estimate_similarity_recovers_exact_transform():
    rng = np.random.default_rng(1)
    for _ in range(20):
        m = _similarity(rng.uniform(-60, 60), rng.uniform(0.3, 4), rng.uniform(-200, 200), rng.uniform(-200, 200))
        src = _apply(m, template(112))
        back = estimate_similarity(src, template(112))
        assert np.abs(_apply(back, src) - template(112)).max() < 1e-9


@pytest.mark.parametrize(
    ("angle", "scale", "size"),
    [(0.0, 1.0, 112), (17.0, 2.3, 112), (-25.0, 1.6, 96), (8.0, 0.9, 64), (30.0, 5.0, 112)],
)
def test_warp_puts_landmarks_on_template(angle, scale, size):
    """Spots drawn at the transformed landmarks appear at the template points of the aligned crop."""
    m = _similarity(angle, scale, 300, 260)
    src = _apply(m, template(112) - 56)  # face centred at (300, 260) in the source image
    image = _blob_image(src, (560, 600), sigma=1.5 * scale)
    aligned = align_face(image, src, size)
    assert not aligned.fallback and aligned.image.shape == (size, size, 3)
    found = _centroids(aligned.image, template(size), radius=max(3, size // 20))
    error = np.linalg.norm(found - template(size), axis=1)
    assert error.max() < 0.5, error  # sub-pixel
    assert np.abs(_apply(aligned.matrix, src) - template(size)).max() < 1e-6


def test_landmarks_with_noise_fit_least_squares():
    rng = np.random.default_rng(2)
    src = _apply(_similarity(10, 2, 50, 60), template(112)) + rng.normal(0, 1.0, (5, 2))
    m = estimate_similarity(src, template(112))
    residual = _apply(m, src) - template(112)
    assert np.abs(residual.mean(axis=0)).max() < 1e-9  # least squares: residuals centre on zero


def test_fallback_centre_crop_is_flagged():
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    image[50:150, 100:200] = 255  # the central square of side 100
    aligned = align_face(image, None, size=64, fallback_crop=0.5)
    assert aligned.fallback
    assert aligned.image.shape == (64, 64, 3)
    assert aligned.image[2:-2, 2:-2].min() == 255


def test_bad_point_sets_raise():
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        align_face(np.zeros((10, 10, 3), np.uint8), None, fallback_crop=0)
