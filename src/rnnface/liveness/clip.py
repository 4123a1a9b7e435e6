"""The frames a liveness check reads: one photo, or every `every`-th frame of a video file or camera."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rnnface.io import load_image
from rnnface.io.folders import IMAGE_SUFFIXES
from rnnface.liveness.check import LivenessError
from rnnface.video.source import open_source, still_image_format

#: Frames sampled from a clip: every 3rd (NUAA's captures keep about one frame in four of a webcam's), 32 at most.
EVERY = 3
MAX_FRAMES = 32

ClipInput = str | os.PathLike | int | Sequence[np.ndarray]


def read_clip(
    source: ClipInput,
    every: int = EVERY,
    max_frames: int = MAX_FRAMES,
    on_frame: Callable[[int], None] = lambda kept: None,
) -> list[np.ndarray]:
    """RGB frames of `source`: a photo (one frame), a video file, a camera index, or frames already decoded. Never
    decodes more than `every * max_frames` frames of a video. `on_frame(n)` hears of each of a video's or camera's
    frames as it is kept (n kept so far; 0 before the first), to prompt a person being filmed."""
    if every < 1 or max_frames < 1:
        raise LivenessError(f"every and max_frames must be at least 1, got {every} and {max_frames}")
    if not isinstance(source, (str, os.PathLike, int)):
        frames = list(source)
        if not frames:
            raise LivenessError("no frames given")
        return frames[: every * max_frames : every] if len(frames) > max_frames else frames
    spec = str(source)
    if not isinstance(source, int) and not spec.isdigit() and Path(spec).is_file():
        if still_image_format(Path(spec)):
            return [load_image(spec)]
        if Path(spec).suffix.lower() in IMAGE_SUFFIXES:  # named as a photo but not one: say so, not "no frames"
            raise LivenessError(f"{spec}: not a readable image (its contents are not a {Path(spec).suffix} photo)")
    video = open_source(spec)
    frames = []
    on_frame(0)
    try:
        for index, _, frame in video:
            if index % every == 0:
                frames.append(frame)
                if len(frames) < max_frames:
                    on_frame(len(frames))
            if len(frames) >= max_frames:
                break
    finally:
        video.close()
    if not frames:
        raise LivenessError(f"{spec}: {'the camera delivered' if video.live else 'the video has'} no frames")
    return frames
