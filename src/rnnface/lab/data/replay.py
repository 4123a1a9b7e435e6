"""Replays made from a still photo: the print an attacker holds to a camera, simulated.

The photo becomes a sheet of paper (its tones compressed toward a paper white, a little blur and grain, as a
print re-filmed shows them) that a hand turns, tilts and moves in front of a camera: each frame is the sheet,
a plane, seen in perspective under a rotation of up to `max_turn` degrees about its vertical axis and smaller
ones about the others. What such a clip must never do is pass the active check; the passive model should call
its frames attacks.
"""

from __future__ import annotations

import cv2
import numpy as np


def plane_homography(
    width: int, height: int, yaw: float, pitch: float, roll: float, focal: float, centre: tuple[float, float]
) -> np.ndarray:
    """The homography that shows a `width` x `height` sheet turned by (yaw, pitch, roll) degrees about its centre,
    seen by a pinhole camera of focal length `focal` pixels, its centre at `centre` in the frame."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    corners = np.array(
        [
            [-width / 2, -height / 2, 0],
            [width / 2, -height / 2, 0],
            [width / 2, height / 2, 0],
            [-width / 2, height / 2, 0],
        ]
    )
    world = corners @ (rz @ rx @ ry).T + np.array([0, 0, focal])
    image = world[:, :2] / world[:, 2:] * focal + np.asarray(centre)
    source = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    return cv2.getPerspectiveTransform(source, image.astype(np.float32))


def as_print(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as a re-filmed print: tones pulled toward paper, slightly blurred, with grain."""
    out: np.ndarray = photo.astype(np.float32)
    out = 40 + out * rng.uniform(0.65, 0.8)
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.2))
    out += rng.normal(0, 4, out.shape)  # type: ignore[arg-type]  # cv2 stubs: a blur is of integers or floats
    return np.clip(out, 0, 255).astype(np.uint8)


def replay_frames(
    photo: np.ndarray,
    frames: int = 16,
    size: tuple[int, int] = (640, 480),
    max_turn: float = 35.0,
    seed: int = 0,
) -> list[np.ndarray]:
    """RGB frames (H, W, 3) of `photo` printed and turned in front of a camera: yaw sweeps out to +-`max_turn` and
    back, with smaller pitch and roll and a hand's drift."""
    rng = np.random.default_rng(seed)
    sheet = as_print(photo, rng)
    w, h = size
    scale = 0.75 * min(w / sheet.shape[1], h / sheet.shape[0])
    sheet = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    background = np.full((h, w, 3), rng.integers(60, 180), dtype=np.uint8)
    phase = np.linspace(0, 2 * np.pi, frames)
    out = []
    for t in phase:
        yaw = max_turn * np.sin(t)
        pitch = 0.3 * max_turn * np.sin(2 * t + rng.uniform(0, 1))
        roll = rng.normal(0, 2)
        centre = (w / 2 + rng.normal(0, 6), h / 2 + rng.normal(0, 6))
        matrix = plane_homography(sheet.shape[1], sheet.shape[0], yaw, pitch, roll, 1.2 * w, centre)
        frame = cv2.warpPerspective(
            sheet, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT, dst=background.copy()
        )
        out.append(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
    return out
