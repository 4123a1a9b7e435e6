"""Synthetic test videos: real face photos moving over a background, with known who-is-where-when.

Used by the tests and by `rnnface bench video`; written with OpenCV's VideoWriter (mp4v).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Actor:
    """A face photo on screen from `start` to `end` seconds, sliding from one point to another."""

    person: str
    photo: np.ndarray  # RGB, the face roughly centred (LFW photos are)
    start: float
    end: float
    origin: tuple[int, int]
    target: tuple[int, int]


def face_patch(photo: np.ndarray, side: int = 150) -> np.ndarray:
    """The central square of a photo (where LFW puts the face)."""
    h, w = photo.shape[:2]
    y, x = (h - side) // 2, (w - side) // 2
    return photo[y : y + side, x : x + side]


def write_video(
    path: str | Path,
    actors: list[Actor],
    seconds: float,
    fps: float = 25.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Path:
    """Render the actors over a textured background into an mp4 file."""
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * 255 / width), (yy * 255 / height), np.full_like(xx, 120)], -1).astype(np.float32)
    background = np.clip(background * 0.6 + rng.normal(0, 8, background.shape), 0, 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    patches = [face_patch(a.photo) for a in actors]
    for i in range(int(round(seconds * fps))):
        t = i / fps
        frame = background.copy()
        for actor, patch in zip(actors, patches):
            if actor.start <= t <= actor.end:
                u = (t - actor.start) / max(actor.end - actor.start, 1e-6)
                x = int(actor.origin[0] + u * (actor.target[0] - actor.origin[0]))
                y = int(actor.origin[1] + u * (actor.target[1] - actor.origin[1]))
                ph, pw = patch.shape[:2]
                x, y = min(max(x, 0), width - pw), min(max(y, 0), height - ph)
                frame[y : y + ph, x : x + pw] = patch
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
