"""Synthetic test videos: real face photos moving over backgrounds, in shots, with known who-is-where-when.

Used by the tests and by `rnnface bench video` / `rnnface bench tracking`; written with OpenCV's VideoWriter
(mp4v). A video is a list of shots, each with its own background and actors (and, optionally, an occluder that
passes over them); `ground_truth` says which person's face is where at every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: Side of the square cut from each photo (LFW puts the face in its centre).
PATCH = 150


@dataclass(frozen=True)
class Actor:
    """A face photo on screen from `start` to `end` seconds (of its shot), sliding from one point to another."""

    person: str
    photo: np.ndarray  # RGB, the face roughly centred (LFW photos are)
    start: float
    end: float
    origin: tuple[int, int]
    target: tuple[int, int]

    def corner(self, t: float, size: tuple[int, int]) -> tuple[int, int] | None:
        """Top-left corner of the patch at time `t`, or None when the actor is off screen."""
        if not self.start <= t <= self.end:
            return None
        u = (t - self.start) / max(self.end - self.start, 1e-6)
        x = int(self.origin[0] + u * (self.target[0] - self.origin[0]))
        y = int(self.origin[1] + u * (self.target[1] - self.origin[1]))
        return min(max(x, 0), size[0] - PATCH), min(max(y, 0), size[1] - PATCH)


@dataclass(frozen=True)
class Shot:
    """One camera view: `seconds` long, its own background, its actors, and an optional occluder (x from, x to,
    y, width, height) sliding across it."""

    seconds: float
    actors: list[Actor]
    background: int = 0  # seed of the background's colours and texture
    occluder: tuple[int, int, int, int, int] | None = None


@dataclass(frozen=True)
class Truth:
    """Where one person's face is at one frame (the patch's box; a face box found there has its centre inside)."""

    frame: int
    person: str
    box: tuple[int, int, int, int]


def face_patch(photo: np.ndarray, side: int = PATCH) -> np.ndarray:
    """The central square of a photo (where LFW puts the face)."""
    h, w = photo.shape[:2]
    y, x = (h - side) // 2, (w - side) // 2
    return photo[y : y + side, x : x + side]


def _background(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A textured gradient; each seed but 0 gets colours of its own (consecutive shots look unlike each other)."""
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    if seed:
        base, slope = rng.uniform(0, 255, 3), rng.uniform(-120, 120, (2, 3))
        background = base + xx[..., None] / width * slope[0] + yy[..., None] / height * slope[1]
    else:
        background = np.stack([xx * 255 / width, yy * 255 / height, np.full_like(xx, 120)], -1)
    return np.clip(background * 0.6 + rng.normal(0, 8, background.shape), 0, 255).astype(np.uint8)


def render(shots: list[Shot], fps: float, size: tuple[int, int]) -> tuple[list[np.ndarray], list[Truth]]:
    """Every frame of the shots one after the other, and the ground truth of every visible face (one mostly
    covered by the occluder or by a face drawn over it is not counted as visible)."""
    frames: list[np.ndarray] = []
    truth: list[Truth] = []
    for shot in shots:
        background = _background(shot.background, size)
        patches = [face_patch(a.photo) for a in shot.actors]
        for i in range(int(round(shot.seconds * fps))):
            t, frame, drawn = i / fps, background.copy(), []
            for actor, patch in zip(shot.actors, patches):
                corner = actor.corner(t, size)
                if corner is None:
                    continue
                x, y = corner
                frame[y : y + PATCH, x : x + PATCH] = patch
                drawn.append((actor.person, (x, y, x + PATCH, y + PATCH)))
            covers = [_occluder_box(shot, t)] if shot.occluder is not None else []
            for k, (person, box) in enumerate(drawn):  # later faces are drawn over earlier ones
                if not any(_covered(box, other) for other in covers + [b for _, b in drawn[k + 1 :]]):
                    truth.append(Truth(len(frames), person, box))
            if covers:
                x0, y0, x1, y1 = covers[0]
                frame[y0:y1, x0:x1] = 90
            frames.append(frame)
    return frames, truth


def _occluder_box(shot: Shot, t: float) -> tuple[int, int, int, int]:
    assert shot.occluder is not None  # asked only of a shot with an occluder
    start, end, y, w, h = shot.occluder
    x = int(start + (end - start) * t / max(shot.seconds, 1e-6))
    return x, y, x + w, y + h


def _covered(box: tuple[int, int, int, int], cover: tuple[int, int, int, int]) -> bool:
    """Whether `cover` hides most of the face in `box`."""
    ix = max(0, min(cover[2], box[2]) - max(cover[0], box[0]))
    iy = max(0, min(cover[3], box[3]) - max(cover[1], box[1]))
    return ix * iy > 0.4 * PATCH * PATCH


def write_shots(
    path: str | Path, shots: list[Shot], fps: float = 25.0, size: tuple[int, int] = (640, 480)
) -> list[Truth]:
    """Render the shots into an mp4 file; return the ground truth."""
    frames, truth = render(shots, fps, size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return truth


def write_video(
    path: str | Path,
    actors: list[Actor],
    seconds: float,
    fps: float = 25.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Path:
    """One shot of the actors over a textured background, as an mp4 file."""
    write_shots(path, [Shot(seconds, actors, background=seed)], fps, size)
    return Path(path)


@dataclass
class Scenario:
    """A named test video: its shots, and the people in it who are enrolled (the others are strangers)."""

    name: str
    shots: list[Shot]
    enrolled: list[str] = field(default_factory=list)
